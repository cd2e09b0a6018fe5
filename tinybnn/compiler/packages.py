"""Packages: the generated C laid out for the build system it goes into.

`tinybnn compile --package` picks one record of `PACKAGES`:

- plain: `<name>.h`, `<name>.c` and `tinybnn_kernels.h` in the output directory.
- cmake: a directory that `add_subdirectory()` turns into the static library target
  `tinybnn::<name>`: `CMakeLists.txt`, `include/<name>.h` (its include directory, public),
  `src/<name>.c` and `src/tinybnn_kernels.h`. It adds no compiler flags: the project's
  toolchain (or SDK) supplies the CPU's; under Zephyr it takes `zephyr_interface`'s.
- arduino: a library folder in the 1.5 format (Arduino library specification rev. 2.2):
  `library.properties`, `src/<name>.h` (the interface the sketch includes),
  `src/<name>/<name>.c` and the kernels header (internal, compiled recursively), and the
  example sketch `examples/classify_window/` that classifies one window from a buffer in
  flash and checks its scores against the integer reference's.

Every package holds the same generated C; the templates in `templates/package/` get data
(names, paths, arrays), the C text of the model comes from `codegen.render` unchanged.

Non-goals: installing or registering anything (no `install()`, no Library Manager
submission); PlatformIO and Makefile packages.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import TinyBNNError
from . import codegen, reference
from .codegen import CModel, c_array
from .kernels import KERNELS_HEADER, template_dir

ARDUINO_EXAMPLE = "classify_window"
# Arduino library specification: the library root folder's name, and url's form (the
# value must be one line of a key=value file).
ARDUINO_FOLDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}\Z")
URL = re.compile(r"https?://[!-~]+\Z")


@dataclass(frozen=True)
class Package:
    """One build system's layout of the generated C.

    `place(file, name)` is where a file of `codegen.render` goes inside the package;
    `templates` are further files, (template in templates/package/, path with {name}),
    rendered from `context`."""

    name: str
    help: str
    place: Callable[[str, str], str]
    templates: tuple[tuple[str, str], ...] = ()
    example: bool = False  # the templates use an example window and its reference scores
    needs_url: bool = False  # the package's metadata has a project URL

    def paths(self, name: str) -> list[str]:
        """Every file the package holds, relative to the output directory."""
        c_files = [p.name for p in codegen.output_paths(Path(), name)]
        return [self.place(f, name) for f in c_files] + [
            out.format(name=name) for _, out in self.templates
        ]


def _plain(fname: str, name: str) -> str:
    return fname


def _cmake(fname: str, name: str) -> str:
    """Sources and the kernels header in src/, the model's header in include/."""
    private = fname.endswith(".c") or fname == KERNELS_HEADER
    return f"{'src' if private else 'include'}/{fname}"


def _arduino(fname: str, name: str) -> str:
    """Headers in src/ are the library's interface (the IDE includes them all); the rest
    goes in a subfolder, compiled recursively, as the specification advises."""
    private = fname.endswith(".c") or fname == KERNELS_HEADER
    return f"src/{name}/{fname}" if private else f"src/{fname}"


PACKAGES: dict[str, Package] = {
    p.name: p
    for p in (
        Package("plain", "the C files in the output directory", _plain),
        Package(
            "cmake",
            "a directory add_subdirectory() makes into the static library tinybnn::<name>",
            _cmake,
            templates=(("cmake/CMakeLists.txt.j2", "CMakeLists.txt"),),
        ),
        Package(
            "arduino",
            "an Arduino library folder (1.5 format) with an example sketch",
            _arduino,
            templates=(
                ("arduino/library.properties.j2", "library.properties"),
                ("arduino/example.ino.j2", f"examples/{ARDUINO_EXAMPLE}/{ARDUINO_EXAMPLE}.ino"),
                ("arduino/window.h.j2", f"examples/{ARDUINO_EXAMPLE}/window.h"),
            ),
            example=True,
            needs_url=True,
        ),
    )
}
DEFAULT_PACKAGE = "plain"


def package(name: str) -> Package:
    """The record of a package name, or a one-line TinyBNNError listing them."""
    if name not in PACKAGES:
        raise TinyBNNError(f"unknown package {name!r}; choose one of {', '.join(PACKAGES)}")
    return PACKAGES[name]


def check(pkg: Package, out_dir: Path, url: str | None) -> None:
    """Refuse, before anything is read or written, a package its build system would reject."""
    if pkg.name == "arduino":
        folder = out_dir.resolve().name
        if not ARDUINO_FOLDER.match(folder):
            raise TinyBNNError(
                f"{out_dir}: an Arduino library folder's name must start with a letter or "
                "digit and hold only letters, digits, _ . - (at most 63 characters); "
                "give another output directory"
            )
    if pkg.needs_url and url is None:
        raise TinyBNNError(
            f"--package {pkg.name} needs --url: the page of your project, which the "
            "Arduino library specification requires in library.properties"
        )
    if url is not None and not URL.match(url):
        raise TinyBNNError(f"--url {url[:60]!r} must be one http:// or https:// address")


def one_line_text(text: str) -> str:
    """Text for one line of a key=value properties file or a CMake comment: printable ASCII
    kept, anything else (a newline that would start another key, say) replaced by "?"."""
    return "".join(c if " " <= c <= "~" else "?" for c in text)


def example_window(cm: CModel) -> dict:
    """The example's window, int16 [T][C] as the C reads it, and the reference's scores."""
    from ..firmware.profile import default_window  # the profiler's seeded window

    x = default_window(cm.program)
    scores = reference.run(cm.program, x)[0]
    return {
        "samples": x[0].T.reshape(-1),
        "scores": scores.astype(np.int32),
        "cls": int(reference.argmax(scores[None])[0]),
    }


def files(pkg: Package, cm: CModel, rendered: dict[str, str], url: str | None = None) -> dict:
    """Path inside the package -> text: the rendered C in its place, then the package's own
    files rendered from the model's data."""
    out = {pkg.place(fname, cm.name): text for fname, text in rendered.items()}
    if not pkg.templates:
        return out
    env = codegen._env(template_dir().parent / "package")
    env.filters.update(carray=c_array, oneline=one_line_text)
    placed = list(out)
    ctx = dict(
        m=cm,
        p=cm.program,
        name=cm.name,
        NAME=cm.name.upper(),
        version=__version__,
        sources=[p for p in placed if p.endswith(".c")],
        url=url,
        example=ARDUINO_EXAMPLE,
        window=example_window(cm) if pkg.example else None,
        **cm.header,
    )
    for template, path in pkg.templates:
        out[path.format(name=cm.name)] = env.get_template(template).render(ctx)
    return out
