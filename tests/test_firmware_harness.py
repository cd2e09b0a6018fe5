"""The bare-metal harness (tinybnn.firmware) on every supported core under QEMU.

Each test writes a tiny C program into tmp_path, builds it with the harness for a
core, and runs it on that core's QEMU board.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tinybnn import firmware as fw

try:
    fw.find_toolchain()
    MISSING = None
except fw.ToolchainMissing as exc:
    MISSING = str(exc)

needs_toolchain = pytest.mark.skipif(
    MISSING is not None, reason=f"no firmware toolchain: {MISSING}"
)
ALL_CORES = pytest.mark.parametrize("core", list(fw.CORES))

# Exercises .data/.bss setup, the string functions, float code (the FPU on M4/M7/M33)
# and every print helper; the tbt_ objects are there for size() and symbols().
STATUS_PROGRAM = r"""
#include <stdint.h>
#include <string.h>
#include "semihost.h"

const uint8_t tbt_table[300] = {1, 2, 3};
uint32_t tbt_zeros[16];
uint32_t tbt_counter = 7;
volatile float tbt_half = 0.5f;
volatile int tbt_index = 299;

int main(void)
{
    uint8_t buf[8];

    memset(buf, 0, sizeof buf);
    memcpy(buf, tbt_table, 3);
    memmove(buf + 1, buf, 3);
    if (memcmp(buf, "\1\1\2\3", 4) != 0)
        return 90;
    if (tbt_zeros[15] != 0 || tbt_counter != 7 || tbt_table[tbt_index] != 0)
        return 91;
    if (tbt_half * 6.0f != 3.0f)
        return 92;
    tb_print("hello ");
    tb_print_int(-42);
    tb_print(" ");
    tb_print_hex(0xbeef);
    tb_print("\n");
    return STATUS;
}
"""

FAULT_PROGRAM = r"""
#include <stdint.h>

/* 0xe0100000 is unmapped on every board, unlike 0xfffffff0 on the micro:bit. */
__attribute__((noinline)) uint32_t tbt_crash(void)
{
    return *(volatile uint32_t *)0xe0100000u;
}

int main(void)
{
    return (int)tbt_crash();
}
"""

HANG_PROGRAM = r"""
volatile int tbt_spin = 1;

int main(void)
{
    while (tbt_spin) {
    }
    return 0;
}
"""

STACK_PROGRAM = r"""
#include <stddef.h>
#include <stdint.h>
#include "semihost.h"
#include "stack.h"

/* Measures the peak with its 1 KiB frame live: called from main, like main's
 * own measurement, so the two peaks differ by this function's frame. */
__attribute__((noinline)) static uint32_t tbt_use_1k(uint32_t seed, size_t *peak)
{
    volatile uint8_t buf[1024];
    uint32_t sum = 0;
    size_t i;

    for (i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(seed + i);
    *peak = tb_stack_peak();
    for (i = 0; i < sizeof buf; i++)
        sum += buf[i];
    return sum;
}

int main(void)
{
    size_t before = tb_stack_peak();
    size_t after;
    uint32_t sum = tbt_use_1k(3, &after);

    tb_print("before=");
    tb_print_int((int32_t)before);
    tb_print(" after=");
    tb_print_int((int32_t)after);
    tb_print("\n");
    return sum == 0 ? 1 : 0;
}
"""

# Deep recursion that overflows every board's stack.
OVERFLOW_PROGRAM = r"""
#include <stdint.h>

volatile uint32_t tbt_depth = 1000000;

__attribute__((noinline)) static uint32_t tbt_recurse(uint32_t n)
{
    volatile uint8_t pad[64];

    pad[n & 63] = (uint8_t)n;
    return n == 0 ? 0 : tbt_recurse(n - 1) + pad[(n + 1) & 63];
}

int main(void)
{
    return (int)tbt_recurse(tbt_depth);
}
"""

# A loop of exactly two instructions (subs, bne) per iteration between markers.
SPIN_PROGRAM = r"""
#include <stdint.h>
#include "tb_markers.h"

__attribute__((noinline)) static void tbt_spin(uint32_t n)
{
    /* GCC hands Thumb-1 inline asm to the assembler in divided syntax. */
    __asm__ volatile(".syntax unified\n1:\tsubs %0, %0, #1\n\tbne 1b" : "+l"(n) : : "cc");
}

int main(void)
{
    TB_MARK();
    tbt_spin(N);
    TB_MARK_END();
    return 0;
}
"""

# A checkpoint at byte 1020 of a 1 KiB page, where QEMU 7.2 reports the 16-bit
# marker as a 4-byte instruction.
PAGE_EDGE_PROGRAM = r"""
#include "tb_markers.h"

void tbt_edge(void);
__asm__(".pushsection .text.tbt_edge, \"ax\", %progbits\n"
        ".balign 1024\n"
        ".space 1016\n"
        ".global tbt_edge\n"
        ".type tbt_edge, %function\n"
        ".thumb_func\n"
        "tbt_edge:\n"
        "nop\n nop\n mov r11, r11\n nop\n nop\n bx lr\n"
        ".size tbt_edge, . - tbt_edge\n"
        ".popsection\n");

int main(void)
{
    TB_MARK();
    tbt_edge();
    TB_MARK();
    TB_MARK_END();
    return 0;
}
"""


def _build(tmp_path: Path, source: str, core: str, name: str = "prog", **kwargs) -> Path:
    src = tmp_path / f"{name}.c"
    src.write_text(source)
    return fw.build([src], [], core, tmp_path / "out", **kwargs)


@needs_toolchain
@ALL_CORES
@pytest.mark.parametrize("opt, status", [("-O2", 0), ("-Os", 7)])
def test_status_and_output(tmp_path: Path, core: str, opt: str, status: int) -> None:
    elf = _build(tmp_path, STATUS_PROGRAM, core, opt=opt, defines=[f"STATUS={status}"])
    result = fw.run(elf, core)
    assert result.output == "hello -42 0x0000beef\n"
    assert result.status == status
    assert result.counts is None

    sizes = fw.size(elf)
    assert sizes["text"] > 0 and sizes["rodata"] >= 300
    assert sizes["data"] >= 8 and sizes["bss"] >= 64
    assert sizes["stack"] == (4096 if fw.CORES[core].machine == "microbit" else 65536)
    objects = {s.name: (s.section, s.size) for s in fw.symbols(elf, "tbt_")}
    assert objects == {
        "tbt_table": ("rodata", 300),
        "tbt_zeros": ("bss", 64),
        "tbt_counter": ("data", 4),
        "tbt_half": ("data", 4),
        "tbt_index": ("data", 4),
    }


@needs_toolchain
@ALL_CORES
def test_hardfault_is_reported(tmp_path: Path, core: str) -> None:
    elf = _build(tmp_path, FAULT_PROGRAM, core)
    with pytest.raises(fw.FirmwareFault, match=f"{core}: .* HardFault: HARDFAULT pc=") as info:
        fw.run(elf, core)
    pc = int(re.search(r"pc=(0x[0-9a-f]+)", str(info.value)).group(1), 16)
    (crash,) = fw.symbols(elf, "tbt_crash")
    assert crash.address <= pc < crash.address + crash.size


@needs_toolchain
@ALL_CORES
def test_hang_times_out(tmp_path: Path, core: str) -> None:
    elf = _build(tmp_path, HANG_PROGRAM, core)
    with pytest.raises(fw.FirmwareTimeout, match=f"{core}: .*{elf.name} did not exit within 1 s"):
        fw.run(elf, core, timeout_s=1)


@needs_toolchain
@ALL_CORES
def test_stack_peak(tmp_path: Path, core: str) -> None:
    elf = _build(tmp_path, STACK_PROGRAM, core)
    result = fw.run(elf, core)
    assert result.status == 0
    before, after = map(int, re.fullmatch(r"before=(\d+) after=(\d+)\n", result.output).groups())
    assert 0 < before < 512
    assert after - before >= 1024
    assert after < fw.size(elf)["stack"]


@needs_toolchain
@ALL_CORES
def test_stack_overflow_faults(tmp_path: Path, core: str) -> None:
    elf = _build(tmp_path, OVERFLOW_PROGRAM, core)
    with pytest.raises(fw.FirmwareFault, match=r"HARDFAULT sp=0x[0-9a-f]+ outside the stack"):
        fw.run(elf, core, timeout_s=5)


@needs_toolchain
@ALL_CORES
def test_icount_is_exact_and_repeatable(tmp_path: Path, core: str) -> None:
    counts = {}
    for n in (100, 200):
        elf = _build(tmp_path, SPIN_PROGRAM, core, f"spin{n}", defines=["TB_PROFILE", f"N={n}"])
        runs = [fw.run(elf, core, plugin_out=tmp_path / f"counts{n}.txt").counts for _ in "ab"]
        assert runs[0] == runs[1]
        counts[n] = runs[0]
    assert len(counts[100]) == 1 and counts[100][0] < 2 * 100 + 10
    assert counts[200][0] - counts[100][0] == 2 * 100

    # Without TB_PROFILE the markers vanish, so the plugin reports no segment.
    elf = _build(tmp_path, SPIN_PROGRAM, core, "plain", defines=["N=100"])
    assert fw.run(elf, core, plugin_out=tmp_path / "plain.txt").counts == []


@needs_toolchain
@ALL_CORES
def test_marker_at_page_edge(tmp_path: Path, core: str) -> None:
    elf = _build(tmp_path, PAGE_EDGE_PROGRAM, core, defines=["TB_PROFILE"])
    (edge,) = fw.symbols(elf, "tbt_edge")
    result = fw.run(elf, core, plugin_out=tmp_path / "counts.txt")
    # bl + nop + nop | nop + nop + bx lr | nothing before the end marker
    assert result.counts == [3, 3, 0]
    assert (edge.address + 4) % 1024 == 1020


@needs_toolchain
def test_stack_size_override(tmp_path: Path) -> None:
    flags = ["-Wl,--defsym=__stack_size=0x2000"]
    elf = _build(tmp_path, STACK_PROGRAM, "cortex-m0", extra_cflags=flags)
    assert fw.size(elf)["stack"] == 0x2000
    assert fw.run(elf, "cortex-m0").status == 0


@needs_toolchain
def test_build_error_and_unknown_core(tmp_path: Path) -> None:
    with pytest.raises(fw.BuildError, match="unused"):
        _build(tmp_path, "int main(void) { int unused; return 0; }\n", "cortex-m3")
    with pytest.raises(ValueError, match="cortex-m85"):
        _build(tmp_path, HANG_PROGRAM, "cortex-m85")


def test_missing_tool_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(fw.ToolchainMissing, match="apt-get install gcc-arm-none-eabi"):
        fw.find_toolchain()
