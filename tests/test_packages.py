"""`tinybnn compile --package`: the CMake package builds into a fresh firmware project with two
added lines and runs under QEMU; the Arduino library passes a check written from the Arduino
library specification (1.5 format, rev. 2.2) and its sources and example sketch build with
an Arduino Cortex-M core's flags and run under QEMU; every package holds the plain C files.

The model is the earbud demo's architecture with seeded weights (`benchmarks/kernels.py`
builds the same), compiled for the core it runs on; every run compares its scores with the
integer reference's, exactly.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from modelcheck import calibrate, random_inputs, signals

import tinybnn
from tinybnn import firmware, models
from tinybnn.cli import main
from tinybnn.compiler import reference
from tinybnn.compiler.api import compile
from tinybnn.compiler.lowering import lower
from tinybnn.compiler.packages import ARDUINO_EXAMPLE, PACKAGES
from tinybnn.compiler.targets import CORES
from tinybnn.firmware.profile import _vectors_header

HERE = Path(__file__).parent / "packaging"
NAME = "gesture"
URL = "https://example.org/earbud"

try:
    firmware.find_toolchain()
    TOOLCHAIN = None
except firmware.ToolchainMissing as exc:
    TOOLCHAIN = str(exc)
needs_toolchain = pytest.mark.skipif(TOOLCHAIN is not None, reason=f"{TOOLCHAIN}")
needs_cmake = pytest.mark.skipif(shutil.which("cmake") is None, reason="no cmake")


def earbud_model() -> tinybnn.nn.Sequential:
    """The earbud demo's architecture: seeded weights, calibrated statistics."""
    torch.manual_seed(0)
    model = models.conv_classifier(5, 128, 6, widths=(16, 32, 48, 64), first_weights="int8")
    return calibrate(model, signals(16, 5, 128, 0), 0)


@pytest.fixture(scope="module")
def earbud(tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    """The model file, windows int16 [6, 5, 128] (realistic and extreme), their scores."""
    path = tmp_path_factory.mktemp("earbud") / "earbud.pt"
    model = earbud_model()
    tinybnn.save(model, path)
    x = np.concatenate([signals(4, 5, 128, 1), random_inputs(2, 5, 128, 1)])
    return path, x, reference.run(lower(model), x)


# ---------------------------------------------------------------------------------------
# Every package: the same C, in its place.


@pytest.mark.parametrize("package", list(PACKAGES))
def test_each_package_holds_the_plain_c_and_lists_its_paths(package, earbud, tmp_path):
    path, _, _ = earbud
    plain = compile(path, tmp_path / "plain", NAME, target="cortex-m4")
    out = tmp_path / package
    result = compile(path, out, NAME, target="cortex-m4", package=package, url=URL)
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == sorted(PACKAGES[package].paths(NAME))
    assert sorted(str(p.relative_to(out)) for p in result.files) == written
    for f in plain.files:
        (inside,) = [p for p in result.files if p.name == f.name]
        assert inside.read_text() == f.read_text(), inside


def test_a_package_never_overwrites_the_model(earbud, tmp_path, capsys):
    """The model file where the package would put a file: refused, nothing written."""
    path, _, _ = earbud
    out = tmp_path / "pkg"
    (out / "include").mkdir(parents=True)
    model = out / "include" / f"{NAME}.h"
    shutil.copy(path, model)
    status = main(["compile", str(model), "-o", str(out), "--name", NAME, "--package", "cmake"])
    err = capsys.readouterr().err
    assert status == 1 and err.count("\n") == 1 and "is the model file" in err, err
    assert sorted(p.name for p in out.rglob("*")) == ["gesture.h", "include"]


@pytest.mark.parametrize(
    "args, fragment",
    [
        pytest.param(["--package", "arduino"], "needs --url", id="arduino_without_url"),
        pytest.param(["--package", "arduino", "--url", "ftp://x"], "http", id="bad_url"),
        pytest.param(
            ["--package", "arduino", "--url", "https://a.b/c\nname=x"], "http", id="url_newline"
        ),
        pytest.param(["--package", "zip"], "invalid value for '--package'", id="unknown"),
    ],
)
def test_package_refusals_are_one_line_and_write_nothing(args, fragment, earbud, tmp_path, capsys):
    path, _, _ = earbud
    out = tmp_path / "lib"
    status = main(["compile", str(path), "-o", str(out), "--name", NAME, *args])
    err = capsys.readouterr().err
    assert status in (1, 2) and err.count("\n") == 1 and fragment in err.lower(), err
    assert not out.exists()


def test_arduino_folder_name_follows_the_specification(earbud, tmp_path, capsys):
    path, _, _ = earbud
    out = tmp_path / "_lib"
    status = main(["compile", str(path), "-o", str(out), "--package", "arduino", "--url", URL])
    err = capsys.readouterr().err
    assert status == 1 and "Arduino library folder's name" in err, err
    assert not out.exists()


# ---------------------------------------------------------------------------------------
# CMake: a fresh project, two added lines, QEMU.

TWO_LINES = f"add_subdirectory({NAME})\ntarget_link_libraries(firmware PRIVATE tinybnn::{NAME})\n"


def cmake_build(project: Path, core: str, vectors: Path) -> subprocess.CompletedProcess:
    """Configure and build `project` for `core` with the arm-none-eabi toolchain file."""
    c = CORES[core]
    build = project / "build"
    shutil.rmtree(build, ignore_errors=True)
    configure = [
        "cmake", "-S", str(project), "-B", str(build),
        f"-DCMAKE_TOOLCHAIN_FILE={HERE / 'toolchain-arm-none-eabi.cmake'}",
        f"-DTB_CPU_FLAGS={' '.join(c.cflags)}",
        f"-DTB_HARNESS={firmware.harness_dir()}",
        f"-DTB_BOARD={c.board}",
        f"-DTB_MODEL={NAME}",
        f"-DTB_VECTORS={vectors}",
    ]  # fmt: skip
    done = subprocess.run(configure, capture_output=True, text=True)
    if done.returncode == 0:
        done = subprocess.run(["cmake", "--build", str(build)], capture_output=True, text=True)
    return done


@needs_toolchain
@needs_cmake
@pytest.mark.parametrize("core", ["cortex-m4", "cortex-m0"])
def test_cmake_package_in_a_fresh_project_runs_under_qemu(core, earbud, tmp_path):
    path, x, scores = earbud
    project = tmp_path / "project"
    shutil.copytree(HERE / "firmware", project)
    compile(path, project / NAME, NAME, target=core, package="cmake")
    vectors = tmp_path / "vectors"
    vectors.mkdir()
    (vectors / "tb_vectors.h").write_text(_vectors_header(NAME, x, scores))

    without = cmake_build(project, core, vectors)
    assert without.returncode != 0 and f"{NAME}.h" in without.stdout + without.stderr

    with open(project / "CMakeLists.txt", "a") as f:
        f.write(TWO_LINES)
    built = cmake_build(project, core, vectors)
    assert built.returncode == 0, built.stdout + built.stderr
    assert (project / "build" / f"libtinybnn_{NAME}.a").is_file() or any(
        (project / "build").rglob(f"libtinybnn_{NAME}.a")
    )
    run = firmware.run(project / "build" / "firmware", core, timeout_s=60)
    assert run.status == 0, run.output
    assert f"OK {len(x)} windows" in run.output


# ---------------------------------------------------------------------------------------
# Arduino: the library specification, then an Arduino core's flags and QEMU.

# Arduino library specification (1.5 format, rev. 2.2), "library.properties file format":
# "Unless noted otherwise below, all fields are required."
REQUIRED = "name version author maintainer sentence paragraph category url architectures".split()
CATEGORIES = {
    "Display", "Communication", "Signal Input/Output", "Sensors", "Device Control", "Timing",
    "Data Storage", "Data Processing", "Other",
}  # fmt: skip
# "only basic letters (A-Z or a-z) and numbers (0-9), spaces ( ), underscores (_), dots (.)
# and dashes (-). They must start with a letter or number. They must contain at least one
# letter." At most 63 characters (arduino-lint's schema of the specification).
LIB_NAME = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9][A-Za-z0-9 _.\-]{0,62}\Z")
# "Version should be semver compliant. 1.2.0 is correct; 1.2 is accepted".
SEMVER = re.compile(r"\d+\.\d+(\.\d+(-[0-9A-Za-z.\-]+)?(\+[0-9A-Za-z.\-]+)?)?\Z")
# "The library root folder name must start with a basic letter (A-Z or a-z) or number
# (0-9), followed by basic letters, numbers, underscores (_), dots (.) and dashes (-). The
# maximum length is 63 characters."
FOLDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}\Z")
SOURCES = (".c", ".cpp", ".S", ".h", ".hpp")


def library_problems(root: Path) -> list[str]:
    """What keeps `root` from being an Arduino library in the 1.5 format; [] if nothing."""
    problems = []
    if not FOLDER.match(root.name):
        problems.append(f"folder name {root.name!r}")
    props = root / "library.properties"
    if not props.is_file():
        return [*problems, "no library.properties in the root folder"]
    fields = {}
    for line in props.read_bytes().decode("utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, eq, value = line.partition("=")
            if not eq:
                problems.append(f"line without '=': {line!r}")
            fields[key.strip()] = value.strip()
    problems += [f"missing field {k}" for k in REQUIRED if not fields.get(k)]
    if "name" in fields and (
        not LIB_NAME.match(fields["name"]) or fields["name"].startswith("Arduino")
    ):
        problems.append(f"name {fields['name']!r}")
    if "version" in fields and not SEMVER.match(fields["version"]):
        problems.append(f"version {fields['version']!r}")
    if "category" in fields and fields["category"] not in CATEGORIES:
        problems.append(f"category {fields['category']!r}")
    if "url" in fields and not re.match(r"https?://\S+\Z", fields["url"]):
        problems.append(f"url {fields['url']!r}")
    if "architectures" in fields and not all(a.strip() for a in fields["architectures"].split(",")):
        problems.append(f"architectures {fields['architectures']!r}")
    src = root / "src"
    # "the source code resides in the src folder": the root is not compiled in this layout,
    # and a utility folder belongs to the 1.0 (flat) layout.
    if not src.is_dir():
        problems.append("no src folder")
    problems += [
        f"source in the root folder: {p.name}" for p in root.glob("*") if p.suffix in SOURCES
    ]
    if (root / "utility").exists():
        problems.append("a utility folder (the 1.0 layout)")
    for header in fields.get("includes", "").split(","):
        if header.strip() and not (src / header.strip()).is_file():
            problems.append(f"includes {header.strip()}: not in src/")
    if src.is_dir() and not list(src.glob("*.h")):
        problems.append("no header in src/ for a sketch to include")
    # Examples: "placed in the examples folder"; a sketch folder holds <folder name>.ino
    # (Arduino sketch specification: the primary sketch file has the folder's name).
    examples = [d for d in (root / "examples").glob("*") if d.is_dir()]
    if not examples:
        problems.append("no example in examples/")
    for d in examples:
        if not (d / f"{d.name}.ino").is_file():
            problems.append(f"examples/{d.name}: no {d.name}.ino")
    return problems


@pytest.fixture(scope="module")
def arduino_lib(earbud, tmp_path_factory) -> Path:
    path, _, _ = earbud
    out = tmp_path_factory.mktemp("arduino") / NAME
    compile(path, out, NAME, target="cortex-m4", package="arduino", url=URL)
    return out


def test_arduino_library_passes_the_specification_check(arduino_lib):
    assert library_problems(arduino_lib) == []
    assert (arduino_lib / "src" / f"{NAME}.h").is_file()  # the sketch's #include <gesture.h>


def _move(root: Path, a: str, b: str) -> None:
    (root / b).parent.mkdir(parents=True, exist_ok=True)
    (root / a).rename(root / b)


def _edit_properties(key: str, value: str | None):
    def edit(root: Path) -> None:
        p = root / "library.properties"
        lines = [ln for ln in p.read_text().splitlines() if not ln.startswith(f"{key}=")]
        p.write_text("\n".join(lines + ([f"{key}={value}"] if value is not None else [])) + "\n")

    return edit


# id -> (break a valid library folder, a fragment of the problem the check must report)
BROKEN = {
    "no_url": (_edit_properties("url", None), "missing field url"),
    "no_paragraph": (_edit_properties("paragraph", None), "missing field paragraph"),
    "bad_category": (_edit_properties("category", "Machine Learning"), "category"),
    "bad_version": (_edit_properties("version", "r5"), "version"),
    "reserved_name": (_edit_properties("name", "Arduino gesture"), "name"),
    "bad_name": (_edit_properties("name", "_gesture!"), "name"),
    "includes_missing": (_edit_properties("includes", "nothere.h"), "includes nothere.h"),
    "flat_layout": (lambda r: _move(r, f"src/{NAME}/{NAME}.c", f"{NAME}.c"), "root folder"),
    "sketch_misnamed": (
        lambda r: _move(
            r,
            f"examples/{ARDUINO_EXAMPLE}/{ARDUINO_EXAMPLE}.ino",
            f"examples/{ARDUINO_EXAMPLE}/main.ino",
        ),
        f"no {ARDUINO_EXAMPLE}.ino",
    ),
    "no_properties": (lambda r: (r / "library.properties").unlink(), "no library.properties"),
}


@pytest.mark.parametrize("broken", list(BROKEN))
def test_the_specification_check_catches_a_broken_library(broken, arduino_lib, tmp_path):
    copy = tmp_path / NAME
    shutil.copytree(arduino_lib, copy)
    breaks, fragment = BROKEN[broken]
    breaks(copy)
    problems = library_problems(copy)
    assert any(fragment in p for p in problems), problems


# An Arduino Cortex-M core's compile flags: the Adafruit SAMD core's platform.txt (SAMD21
# Cortex-M0+ and SAMD51 Cortex-M4F boards; the M4 boards add the FPU flags of their
# boards.txt), at its "all" warning level, plus -Werror: the library must build warning-free.
ARDUINO_COMMON = [
    "-mthumb", "-c", "-g", "-Os", "-Wall", "-Wextra", "-Werror=return-type",
    "-Wno-expansion-to-defined", "-Werror", "-ffunction-sections", "-fdata-sections",
    "-nostdlib", "--param", "max-inline-insns-single=500",
    "-DF_CPU=48000000L", "-DARDUINO=10819", "-DARDUINO_ARCH_SAMD",
]  # fmt: skip
ARDUINO_C = ["-std=gnu11"]
ARDUINO_CPP = ["-std=gnu++11", "-fno-threadsafe-statics", "-fno-rtti", "-fno-exceptions"]
ARDUINO_CORES = {
    "cortex-m0plus": ["-mcpu=cortex-m0plus"],
    "cortex-m4": ["-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
}


def arduino_compile(compiler: str, flags: list[str], source: Path, obj: Path, includes) -> None:
    cmd = [compiler, *flags, *(f"-I{d}" for d in includes), str(source), "-o", str(obj)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, f"{source.name}: {done.stderr}"


@needs_toolchain
@pytest.mark.parametrize("core", list(ARDUINO_CORES))
def test_arduino_sketch_builds_with_core_flags_and_runs_under_qemu(core, earbud, tmp_path):
    """The library's sources with the core's C flags, the example sketch (preprocessed as
    the Arduino builder does: Arduino.h first) with its C++ flags, linked with the harness
    and run once through setup() and loop(): the printed class and scores are the
    reference's."""
    path, _, _ = earbud
    lib = tmp_path / NAME
    result = compile(path, lib, NAME, target=core, package="arduino", url=URL)
    assert library_problems(lib) == []
    # The core's newlib headers are not installed here: the harness's <string.h> stands in.
    flags = [*ARDUINO_CORES[core], *ARDUINO_COMMON, "-isystem", str(firmware.harness_dir())]
    objs = tmp_path / "obj"
    objs.mkdir()
    src = lib / "src"
    built = []
    for i, c in enumerate(sorted(src.rglob("*.c"))):
        built.append(objs / f"lib{i}.o")
        arduino_compile("arm-none-eabi-gcc", flags + ARDUINO_C, c, built[-1], [src])
    sketch_dir = lib / "examples" / ARDUINO_EXAMPLE
    sketch = objs / f"{ARDUINO_EXAMPLE}.ino.cpp"
    ino = sketch_dir / f"{ARDUINO_EXAMPLE}.ino"
    sketch.write_text(f'#include <Arduino.h>\n#line 1 "{ino}"\n' + ino.read_text())
    includes = [HERE / "arduino", firmware.harness_dir(), src, sketch_dir]
    for cpp in (sketch, HERE / "arduino" / "arduino_main.cpp"):
        built.append(objs / f"{cpp.stem}.o")
        arduino_compile("arm-none-eabi-g++", flags + ARDUINO_CPP, cpp, built[-1], includes)

    elf = firmware.build(built, [], core, tmp_path / "elf", opt="-Os")
    run = firmware.run(elf, core, timeout_s=60)
    assert run.status == 0, run.output
    x = _window_from_header(sketch_dir / "window.h")
    want = reference.run(result.program, x)[0]
    cls = int(reference.argmax(want[None])[0])
    names = result.program.class_names
    expected = [f"class {cls}: {names[cls]}"] + [f"score {k}: {v}" for k, v in enumerate(want)]
    expected.append("the scores equal the reference's")
    assert run.output.splitlines() == expected


def _window_from_header(path: Path) -> np.ndarray:
    """window_samples of the example's window.h, as int16 [1, C, T]."""
    text = path.read_text()
    body = re.search(r"window_samples\[(\d+) \* (\d+)\] = \{(.*?)\};", text, re.DOTALL)
    t, c = int(body.group(1)), int(body.group(2))
    values = np.array([int(v) for v in body.group(3).replace("\n", " ").split(",") if v.strip()])
    return values.astype(np.int16).reshape(t, c).T[None]
