"""Build C for emulated Cortex-M cores, run it under QEMU, and measure it.

The firmware harness (``firmware_tests/``, installed as ``tinybnn.firmware_data``)
supplies a vector table and reset handler, semihosting output and exit, the four
``<string.h>`` functions generated code may call, stack painting, one linker script
per QEMU board, and a QEMU TCG plugin that counts instructions between markers.

Typical use::

    elf = build([Path("test_main.c"), Path("net.c")], [Path(".")], "cortex-m4", out_dir)
    result = run(elf, "cortex-m4", plugin_out=out_dir / "counts.txt")
    result.status, result.output, result.counts

A program reports through ``semihost.h`` (``tb_print``, ``tb_print_int``, ...), its
``main`` return value becomes ``RunResult.status``, ``stack.h``'s ``tb_stack_peak()``
gives its deepest stack use, and ``tb_markers.h``'s ``TB_MARK()``/``TB_MARK_END()``
delimit the segments whose instruction counts land in ``RunResult.counts`` (built
with ``defines=["TB_PROFILE"]``).

Requires ``arm-none-eabi-gcc`` (with binutils) and ``qemu-system-arm`` 7.2, plus a host
``gcc`` to build the plugin; ``find_toolchain`` says what is missing.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..compiler.targets import CORES, Core

__all__ = [
    "CORES",
    "BuildError",
    "Core",
    "FirmwareError",
    "FirmwareFault",
    "FirmwareTimeout",
    "RunResult",
    "Symbol",
    "ToolchainMissing",
    "build",
    "find_toolchain",
    "harness_dir",
    "icount_plugin",
    "run",
    "size",
    "symbols",
]


# Tool -> Debian package that provides it.
_APT_PACKAGES = {
    "arm-none-eabi-gcc": "gcc-arm-none-eabi",
    "arm-none-eabi-size": "binutils-arm-none-eabi",
    "arm-none-eabi-nm": "binutils-arm-none-eabi",
    "qemu-system-arm": "qemu-system-arm",
    "gcc": "gcc",
}

_HARNESS_SOURCES = ("startup.c", "semihost.c", "libc_min.c", "stack.c")

_WARNINGS = ("-Wall", "-Wextra", "-Werror")
# -g only adds .debug_* sections (for addr2line on a fault's pc), not loaded code.
_CFLAGS = ("-std=c99", "-mthumb", "-g", "-ffreestanding", "-nostdlib", *_WARNINGS)
_SECTIONS = ("-ffunction-sections", "-fdata-sections", "-Wl,--gc-sections")

# Exit statuses reserved by startup.c for exceptions; see its header comment.
_FAULT_STATUSES = {3: "HardFault", 4: "NMI", 5: "unexpected exception"}
_FAULT_LINE = re.compile(r"^(HARDFAULT|NMI|UNEXPECTED EXCEPTION) .*$", re.MULTILINE)


class FirmwareError(RuntimeError):
    """Base class for every failure to build or run firmware."""


class ToolchainMissing(FirmwareError):
    """A required program is not installed."""


class BuildError(FirmwareError):
    """The cross compiler rejected the sources (the message holds its output)."""


class FirmwareTimeout(FirmwareError):
    """The firmware did not exit in time (a hang, or far too much work)."""


class FirmwareFault(FirmwareError):
    """The firmware took a fault, or QEMU stopped on a CPU lockup."""


@dataclass(frozen=True)
class RunResult:
    """What a firmware run produced.

    ``counts`` holds the instruction count of each marker segment when the run was
    profiled (``plugin_out`` given), else None; ``classes`` the same segments' counts per
    instruction class (class name -> count, see icount_plugin.c), when asked for.
    """

    status: int
    output: str
    counts: list[int] | None
    classes: list[dict[str, int]] | None = None


@dataclass(frozen=True)
class Symbol:
    """One sized symbol of an ELF; ``section`` is text, rodata, data or bss."""

    name: str
    address: int
    size: int
    section: str


def harness_dir() -> Path:
    """The directory holding startup.c, the headers, boards/ and the plugin source."""
    try:
        startup = Path(str(resources.files("tinybnn.firmware_data").joinpath("startup.c")))
    except (ImportError, TypeError):
        startup = None
    if startup is None or not startup.is_file():
        # Source checkout where the package mapping is not installed.
        startup = Path(__file__).resolve().parents[2] / "firmware_tests" / "startup.c"
    return startup.parent


def find_toolchain(tools: Iterable[str] = tuple(_APT_PACKAGES)) -> dict[str, Path]:
    """Locate the given programs (default: all); raise ToolchainMissing on the first absent."""
    found = {}
    for tool in tools:
        path = shutil.which(tool)
        if path is None:
            raise ToolchainMissing(
                f"{tool} not found; install it with: sudo apt-get install {_APT_PACKAGES[tool]}"
            )
        found[tool] = Path(path)
    return found


def _core(core: str) -> Core:
    """The record of a core QEMU runs (`tinybnn.compiler.targets.CORES`)."""
    try:
        return CORES[core]
    except KeyError:
        raise ValueError(f"unknown core {core!r}; choose one of {', '.join(CORES)}") from None


def build(
    sources: Sequence[Path],
    include_dirs: Iterable[Path],
    core: str,
    out_dir: Path,
    opt: str = "-O2",
    defines: Iterable[str] = (),
    extra_cflags: Iterable[str] = (),
) -> Path:
    """Compile and link ``sources`` with the harness into ``out_dir/<stem>-<core>.elf``.

    ``sources[0]`` names the ELF; one source must define ``int main(void)``.
    ``defines`` are ``NAME`` or ``NAME=VALUE``. ``extra_cflags`` reach the link too,
    e.g. ``-Wl,--defsym=__stack_size=0x2000`` to change the board's default stack size.
    """
    target = _core(core)
    gcc = find_toolchain(["arm-none-eabi-gcc"])["arm-none-eabi-gcc"]
    harness = harness_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    elf = out_dir / f"{Path(sources[0]).stem}-{core}.elf"
    cmd = [
        str(gcc),
        *target.cflags,
        opt,
        *_CFLAGS,
        *_SECTIONS,
        *(f"-I{d}" for d in include_dirs),
        f"-I{harness}",
        *(f"-D{d}" for d in defines),
        *extra_cflags,
        *(str(s) for s in sources),
        *(str(harness / s) for s in _HARNESS_SOURCES),
        f"-L{harness / 'boards'}",  # where the board script finds common.ld
        f"-T{harness / 'boards' / target.board}.ld",
        "-lgcc",
        "-o",
        str(elf),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"build for {core} failed:\n{proc.stderr.strip()}")
    return elf


def icount_plugin() -> Path:
    """Build the instruction-count plugin with the host gcc (once per source version)."""
    gcc = find_toolchain(["gcc"])["gcc"]
    source = harness_dir() / "icount_plugin.c"
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tinybnn"
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError:  # e.g. a read-only home
        cache = Path(tempfile.gettempdir()) / "tinybnn-cache"
        cache.mkdir(exist_ok=True)
    plugin = cache / f"icount_plugin-{digest}.so"
    if not plugin.exists():
        # Build under a private name, then rename: safe with concurrent callers.
        tmp = plugin.with_name(f"{plugin.name}.{os.getpid()}.tmp")
        cmd = [str(gcc), "-shared", "-fPIC", "-O2", "-std=c99"]
        proc = subprocess.run([*cmd, str(source), "-o", str(tmp)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise BuildError(f"building the QEMU plugin failed:\n{proc.stderr.strip()}")
        os.replace(tmp, plugin)
    return plugin


def _qemu_arg(path: Path) -> str:
    """QEMU option values separate fields with commas; a literal comma is doubled."""
    return str(path).replace(",", ",,")


def run(
    elf: Path,
    core: str,
    timeout_s: float = 30,
    plugin_out: Path | None = None,
    classes: bool = False,
) -> RunResult:
    """Run ``elf`` on the QEMU board for ``core`` until it exits.

    The semihosting console is captured through a file chardev (QEMU's own stdout and
    stderr stay separate). With ``plugin_out``, the instruction-count plugin writes its
    segment counts there and they are returned in ``RunResult.counts``; with ``classes``
    too, their counts per instruction class (in ``plugin_out`` + ".classes") in
    ``RunResult.classes``.

    Raises FirmwareTimeout if the run takes longer than ``timeout_s``, FirmwareFault
    on a fault or CPU lockup, FirmwareError if QEMU itself fails.
    """
    target = _core(core)
    qemu = find_toolchain(["qemu-system-arm"])["qemu-system-arm"]
    with tempfile.TemporaryDirectory(prefix="tinybnn-qemu-") as tmp:
        console = Path(tmp) / "semihosting.txt"
        cmd = [
            str(qemu),
            "-M",
            target.machine,
            "-nographic",
            "-chardev",
            f"file,id=semihost,path={_qemu_arg(console)}",
            "-semihosting-config",
            "enable=on,target=native,chardev=semihost",
            "-kernel",
            str(elf),  # a plain value: commas stay single
        ]
        if plugin_out is not None:
            plugin_out.unlink(missing_ok=True)
            plugin = f"{_qemu_arg(icount_plugin())},out={_qemu_arg(plugin_out)}"
            if classes:
                _classes_path(plugin_out).unlink(missing_ok=True)
                plugin += f",classes={_qemu_arg(_classes_path(plugin_out))}"
            cmd += ["-plugin", plugin]
        try:
            proc = subprocess.run(
                cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout_s
            )
        except subprocess.TimeoutExpired:
            output = console.read_text(errors="replace") if console.exists() else ""
            raise FirmwareTimeout(
                f"{core}: {elf} did not exit within {timeout_s:g} s (hang?); "
                f"output so far: {output[-500:]!r}"
            ) from None
        output = console.read_text(errors="replace") if console.exists() else ""

    if "Lockup" in proc.stderr:
        raise FirmwareFault(
            f"{core}: {elf} locked up (a fault while handling a fault, e.g. a stack "
            f"overflow): {proc.stderr.strip().splitlines()[0]}"
        )
    fault = _FAULT_LINE.search(output)
    if proc.returncode in _FAULT_STATUSES and fault:
        raise FirmwareFault(
            f"{core}: {elf} stopped on a {_FAULT_STATUSES[proc.returncode]}: {fault.group(0)}"
        )
    if proc.returncode < 0 or (proc.returncode != 0 and "qemu-system-arm:" in proc.stderr):
        raise FirmwareError(
            f"{core}: QEMU failed on {elf} (status {proc.returncode}): {proc.stderr.strip()}"
        )
    counts = None
    if plugin_out is not None:
        if not plugin_out.exists():
            raise FirmwareError(f"{core}: the icount plugin wrote no {plugin_out}")
        counts = [int(line) for line in plugin_out.read_text().split()]
    per_class = _read_classes(_classes_path(plugin_out)) if plugin_out and classes else None
    return RunResult(proc.returncode, output, counts, per_class)


def _classes_path(plugin_out: Path) -> Path:
    return plugin_out.with_name(plugin_out.name + ".classes")


def _read_classes(path: Path) -> list[dict[str, int]]:
    """The plugin's classes file: a "# names" line, then one line of counts per segment."""
    if not path.exists():
        raise FirmwareError(f"the icount plugin wrote no {path}")
    header, *rows = path.read_text().splitlines()
    names = header.lstrip("#").split()
    return [dict(zip(names, map(int, row.split()), strict=True)) for row in rows]


def size(elf: Path) -> dict[str, int]:
    """Section sizes in bytes: text, rodata, data, bss and stack.

    Flash holds text + rodata + data (its initial values); RAM holds data + bss + stack.
    """
    tool = find_toolchain(["arm-none-eabi-size"])["arm-none-eabi-size"]
    out = subprocess.run([str(tool), "-A", str(elf)], capture_output=True, text=True, check=True)
    sections = {}
    for line in out.stdout.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[0].startswith(".") and fields[1].isdigit():
            sections[fields[0]] = int(fields[1])
    return {
        "text": sections.get(".text", 0),
        "rodata": sections.get(".rodata", 0) + sections.get(".ARM.exidx", 0),
        "data": sections.get(".data", 0),
        "bss": sections.get(".bss", 0),
        "stack": sections.get(".stack", 0),
    }


# nm type letters (either case) -> section kind
_NM_SECTIONS = {"t": "text", "r": "rodata", "d": "data", "b": "bss"}


def symbols(elf: Path, prefix: str = "") -> list[Symbol]:
    """Sized code and data symbols whose name starts with ``prefix``, smallest first.

    E.g. the flash taken by a model's weights:
    ``sum(s.size for s in symbols(elf, "net_") if s.section == "rodata")``.
    """
    tool = find_toolchain(["arm-none-eabi-nm"])["arm-none-eabi-nm"]
    cmd = [str(tool), "--size-sort", "-S", str(elf)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    found = []
    for line in out.stdout.splitlines():
        address, sym_size, kind, name = line.split(maxsplit=3)
        section = _NM_SECTIONS.get(kind.lower())
        if section and name.startswith(prefix):
            found.append(Symbol(name, int(address, 16), int(sym_size, 16), section))
    return found
