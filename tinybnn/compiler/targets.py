"""Targets: one record per core, for everything that depends on it.

A `Core` holds the traits the kernel choice reads (`tinybnn.compiler.variants`), the flags
arm-none-eabi-gcc builds it with, and the QEMU board that runs it (`tinybnn.firmware`). The
compiler, the profiler, the firmware tests and the benchmarks all read these records; a new
core is one entry in `TARGETS` (plus, for a new QEMU board, its linker script in
`firmware_tests/boards/`).

"portable" is not a core: it emits the reference loops only, the specification. "host" is
the machine that builds the tests, with the fast kernels.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import TinyBNNError
from .kernels import LIMITS


@dataclass(frozen=True)
class Timing:
    """Cycles per instruction class of one core, from its Technical Reference Manual's
    instruction timings (zero wait states); `tinybnn.firmware.cycles` applies them to the
    classes the QEMU plugin counts. A range (least, assumed, most) stands where the manual
    gives one."""

    manual: str  # where the figures come from
    refill: tuple[int, int, int]  # P: cycles to refill the pipeline after a taken branch
    load: int  # LDR/STR single
    pipelined: int  # a load/store single right after a load single (M3/M4 overlap them)
    mul: int  # MUL(S)
    mla: int  # MLA, MLS
    mul_long: tuple[int, int, int] | None = None  # SMULL, UMULL, SMLAL, UMLAL
    dsp_mac: int | None = None  # SMLAD, SMUAD, SMLAxy, ...: None where the ISA has none
    div: tuple[int, int, int] | None = None  # SDIV, UDIV (early termination)
    call_extra: int = 0  # BL and POP {..., pc} beyond 1 + P (+ N): ARMv6-M fetches more
    small_mul: int | None = None  # MULS with the iterative multiplier a part may choose


# Cortex-M0 TRM (DDI 0432C) 3.3 and Cortex-M0+ TRM (DDI 0484C) 3.3: loads 2, multiples 1+N;
# B<cond> 1 or 3 (M0) / 1 or 2 (M0+), B and BX 3 / 2, BL 4 / 3, POP {pc} 4+N / 3+N; MULS 1,
# or 32 with the small multiplier.
_V6M_FAST = dict(load=2, pipelined=2, mul=1, mla=1, call_extra=1, small_mul=32)
# Cortex-M3 TRM (DDI 0337I) table 3-1 and Cortex-M4 TRM (DDI 0439D, 100166) table 3-1:
# P is 1 to 3; neighbouring loads and stores pipeline; SDIV/UDIV 2 to 12.
M0_TIMING = Timing("Cortex-M0 TRM, table 3-1", (2, 2, 2), **_V6M_FAST)
M0PLUS_TIMING = Timing("Cortex-M0+ TRM, table 3-1", (1, 1, 1), **_V6M_FAST)
M3_TIMING = Timing(
    "Cortex-M3 TRM, table 3-1", (1, 2, 3), 2, 1, mul=1, mla=2, mul_long=(3, 5, 7), div=(2, 7, 12)
)
M4_TIMING = Timing(
    "Cortex-M4 TRM, table 3-1",
    (1, 2, 3),
    2,
    1,
    mul=1,
    mla=1,
    mul_long=(1, 1, 1),
    dsp_mac=1,
    div=(2, 7, 12),
)


@dataclass(frozen=True)
class Core:
    """What compile, profile and the firmware harness need to know about one target."""

    name: str
    fast: bool  # gets the fast kernel variants (else the reference loops only)
    sst_max_in: int = 0  # largest c_in for the subset-sum first layer (RAM: 4 * 2^c per step)
    unaligned: bool = False  # loads words at any address (xs reads sample pairs unpadded)
    smlad: bool = False  # two int16 multiply-accumulates in one instruction: xs, else xm
    machine: str | None = None  # qemu-system-arm -M; None: not run under QEMU
    cflags: tuple[str, ...] = ()  # CPU and float ABI flags of arm-none-eabi-gcc
    board: str | None = None  # linker script: firmware_tests/boards/<board>.ld
    timing: Timing | None = None  # cycles per instruction class; None: no cycle model

    def __post_init__(self):
        if self.sst_max_in > LIMITS["TB_SST_MAX_IN"]:
            raise ValueError(
                f"{self.name}: sst_max_in {self.sst_max_in} exceeds the kernels' "
                f"TB_SST_MAX_IN {LIMITS['TB_SST_MAX_IN']}"
            )


_M4_FLOAT = ("-mfloat-abi=hard", "-mfpu=fpv4-sp-d16")

TARGETS: dict[str, Core] = {
    c.name: c
    for c in (
        Core("portable", fast=False),
        # The host takes xs (its pairs in portable C); tests run xm there as a core without SMLAD.
        Core("host", fast=True, sst_max_in=8, unaligned=True, smlad=True),
        # Small RAM on M0-class parts: tables up to 64 entries (6 channels: an IMU).
        Core(
            "cortex-m0",
            True,
            6,
            machine="microbit",
            cflags=("-mcpu=cortex-m0",),
            board="microbit",
            timing=M0_TIMING,
        ),
        # QEMU has no M0+ board; the ARMv6-M code runs on the micro:bit's M0.
        Core(
            "cortex-m0plus",
            True,
            6,
            machine="microbit",
            cflags=("-mcpu=cortex-m0plus",),
            board="microbit",
            timing=M0PLUS_TIMING,
        ),
        Core(
            "cortex-m3",
            True,
            8,
            unaligned=True,
            machine="mps2-an385",
            cflags=("-mcpu=cortex-m3",),
            board="mps2-an385",
            timing=M3_TIMING,
        ),
        # Hard-float builds, as shipped firmware for these cores usually is; the startup code
        # enables the FPU. Binarized models use no float anyway.
        Core(
            "cortex-m4",
            True,
            8,
            unaligned=True,
            smlad=True,
            machine="mps2-an386",
            cflags=("-mcpu=cortex-m4", *_M4_FLOAT),
            board="mps2-an386",
            timing=M4_TIMING,
        ),
        # No cycle model for M7 (dual issue, caches, branch prediction) nor M33 (not yet).
        Core(
            "cortex-m7",
            True,
            8,
            unaligned=True,
            smlad=True,
            machine="mps2-an500",
            cflags=("-mcpu=cortex-m7", "-mfloat-abi=hard", "-mfpu=fpv5-d16"),
            board="mps2-an500",
        ),
        Core(
            "cortex-m33",
            True,
            8,
            unaligned=True,
            smlad=True,
            machine="mps2-an505",
            cflags=("-mcpu=cortex-m33", "-mfloat-abi=hard", "-mfpu=fpv5-sp-d16"),
            board="mps2-an505",
        ),
    )
}
DEFAULT_TARGET = "portable"
# The cores QEMU runs (every Cortex-M target).
CORES: dict[str, Core] = {n: c for n, c in TARGETS.items() if c.machine is not None}


def target(name: str) -> Core:
    """The record of a target name, or a one-line TinyBNNError listing the known ones."""
    if name not in TARGETS:
        raise TinyBNNError(f"unknown target {name!r}; choose one of {', '.join(TARGETS)}")
    return TARGETS[name]


def core(name: str) -> Core:
    """The record of a core QEMU runs, or a one-line TinyBNNError listing them."""
    if name not in CORES:
        raise TinyBNNError(f"unknown core {name!r}; choose one of {', '.join(CORES)}")
    return CORES[name]
