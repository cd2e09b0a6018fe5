"""The cycle estimate: the QEMU plugin's instruction classes on hand-written assembly whose
classes are known (tests/cycles/snippets.S), the cycle model's arithmetic against the
Technical Reference Manuals' figures summed by hand, and `tinybnn profile`'s report."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from test_codegen import golden_model

import tinybnn
from tinybnn import firmware
from tinybnn.cli import main
from tinybnn.compiler.targets import CORES
from tinybnn.errors import TinyBNNError
from tinybnn.firmware import cycles
from tinybnn.firmware.profile import profile

try:
    firmware.find_toolchain()
except firmware.ToolchainMissing as exc:
    pytest.skip(f"no firmware toolchain: {exc}", allow_module_level=True)

SNIPPETS = Path(__file__).parent / "cycles"
ZERO = dict.fromkeys(
    "alu load load_pipelined store store_pipelined load_multiple load_multiple_regs "
    "store_multiple store_multiple_regs pop_pc pop_pc_regs branch branch_link table_branch "
    "cond_taken cond_not_taken mul mla mul_long dsp_mac div halfwords code_reads".split(),
    0,
)
# Each snippet's classes, read off its source in snippets.S.
EXPECTED = {
    # ldr, ldr (after a load), ldr from flash (after a load), str (after a load), str,
    # adds, ldr from flash
    "loads": dict(
        alu=1, load=2, load_pipelined=2, store=1, store_pipelined=1, halfwords=7, code_reads=2
    ),
    # push {3}, ldmia {2}, stmia {2}, pop {3}, ldmia {2} from flash
    "multiple": dict(
        load_multiple=3,
        load_multiple_regs=7,
        store_multiple=2,
        store_multiple_regs=5,
        halfwords=5,
        code_reads=2,
    ),
    # 5 x (subs, bne: 4 taken, 1 not), b, bl + bx lr, bl + push {lr} + pop {pc}, 2 x muls
    "branches": dict(
        alu=5,
        cond_taken=4,
        cond_not_taken=1,
        branch=2,
        branch_link=2,
        store_multiple=1,
        store_multiple_regs=1,
        pop_pc=1,
        pop_pc_regs=1,
        mul=2,
        halfwords=20,
    ),
    # mul, mla, mls, umull, smlal, smlad, smuad, smlabb, sdiv, udiv, ldrd, strd, cbz (not
    # taken), movs, cbnz (taken), movs, tbb (reads its table in flash), cmp, bne.w (taken)
    "v7": dict(
        mul=1,
        mla=2,
        mul_long=2,
        dsp_mac=3,
        div=2,
        load_multiple=1,
        load_multiple_regs=2,
        store_multiple=1,
        store_multiple_regs=2,
        cond_not_taken=1,
        cond_taken=2,
        alu=3,
        table_branch=1,
        halfwords=33,
        code_reads=1,
    ),
}
# Cycles of each snippet summed by hand from the manuals' tables (docs/cycles.md), with the
# assumed refill P (M4: 2; M0: 2, M0+: 1, fixed by their branch timings).
HAND = {
    "cortex-m4": {
        "loads": 1 + 2 * 2 + 1 * 2 + 2 + 1,  # alu, 2 loads, 2 pipelined, store, pipelined store
        "multiple": (1 + 3) + (1 + 2) + (1 + 2) + (1 + 3) + (1 + 2),  # 1 + N each
        # subs x5, bne 4 x (1+P) + 1, b (1+P), bl (1+P), bx (1+P), push (1+1), pop pc
        # (1+N+P), muls x2
        "branches": 5 + 4 * 3 + 1 + 3 + 2 * 3 + 3 + 2 + (1 + 1 + 2) + 2,
        # mul 1, mla 1 x2, long 1 x2, dsp 1 x3, div 7 (2-12) x2, ldrd 1+2, strd 1+2, cbz 1,
        # movs 1, cbnz 1+P, movs 1, tbb 2+P, cmp 1, bne.w 1+P
        "v7": 1 + 2 + 2 + 3 + 14 + 3 + 3 + 1 + 1 + 3 + 1 + 4 + 1 + 3,
    },
    "cortex-m0": {
        "loads": 1 + 2 * 6,  # no pipelining: every load and store 2
        "multiple": 4 + 3 + 3 + 4 + 3,
        # subs x5, bne 4 x 3 + 1, b 3, bl 4, bx 3, bl 4, push 2, pop pc 4+N, muls x2
        "branches": 5 + 12 + 1 + 3 + 4 + 3 + 4 + 2 + 5 + 2,
    },
    "cortex-m0plus": {
        "loads": 1 + 2 * 6,
        "multiple": 4 + 3 + 3 + 4 + 3,
        # subs x5, bne 4 x 2 + 1, b 2, bl 3, bx 2, bl 3, push 2, pop pc 3+N, muls x2
        "branches": 5 + 8 + 1 + 2 + 3 + 2 + 3 + 2 + 4 + 2,
    },
}
SNIPPET_CORES = {"cortex-m0": ["loads", "multiple", "branches"], "cortex-m4": list(EXPECTED)}


@pytest.fixture(scope="module")
def classes(tmp_path_factory) -> dict[str, dict[str, dict[str, int]]]:
    """core -> snippet -> its class counts, from one QEMU run per core."""
    out = {}
    for core, names in SNIPPET_CORES.items():
        tmp = tmp_path_factory.mktemp(core)
        sources = [SNIPPETS / "snippets_main.c", SNIPPETS / "snippets.S"]
        elf = firmware.build(sources, [], core, tmp)
        run = firmware.run(elf, core, plugin_out=tmp / "counts.txt", classes=True)
        assert run.status == 0 and run.classes is not None and len(run.classes) == len(names)
        for seg, count in zip(run.classes, run.counts, strict=True):
            assert sum(seg[k] for k in cycles.INSTRUCTION_CLASSES) == count
        out[core] = dict(zip(names, run.classes, strict=True))
    return out


@pytest.mark.parametrize(
    "core, snippet",
    [pytest.param(c, s, id=f"{c}-{s}") for c, names in SNIPPET_CORES.items() for s in names],
)
def test_the_plugin_classifies_known_code_exactly(classes, core, snippet):
    assert classes[core][snippet] == {**ZERO, **EXPECTED[snippet]}


@pytest.mark.parametrize(
    "core, snippet",
    [pytest.param(c, s, id=f"{c}-{s}") for c, hand in HAND.items() for s in hand],
)
def test_the_cycle_model_gives_the_manuals_sums(classes, core, snippet):
    counted = classes["cortex-m0" if core == "cortex-m0plus" else core][snippet]
    est = cycles.estimate(counted, CORES[core])
    assert est.assumed == HAND[core][snippet]
    assert est.least <= est.assumed <= est.most
    assert est.wait_cycles == 0


def test_ranges_small_multiplier_and_wait_states(classes):
    v7 = classes["cortex-m4"]["v7"]
    m4 = cycles.estimate(v7, CORES["cortex-m4"])
    # P from 1 to 3 on the 2 taken branches and the tbb; the two divides from 2 to 12 cycles.
    assert (m4.assumed - m4.least, m4.most - m4.assumed) == (3 + 2 * 5, 3 + 2 * 5)
    branches = classes["cortex-m0"]["branches"]
    fast = cycles.estimate(branches, CORES["cortex-m0plus"])
    small = cycles.estimate(branches, CORES["cortex-m0plus"], cycles.Options(multiplier="small"))
    assert small.assumed - fast.assumed == 2 * 31  # two MULS at 32 cycles instead of 1
    waits = cycles.estimate(branches, CORES["cortex-m0"], cycles.Options(wait_states=2))
    # 20 halfwords = 10 fetches, and 9 taken branches (4 bne; b and bx; 2 bl; pop {pc})
    # fetch their targets; no data from flash.
    taken = 4 + 2 + 2 + 1
    assert waits.wait_cycles == 2 * (20 // 2 + taken)
    assert waits.assumed == cycles.estimate(branches, CORES["cortex-m0"]).assumed + 2 * 19


@pytest.mark.parametrize(
    "core, options, fragment",
    [
        pytest.param("cortex-m7", cycles.Options(), "has no cycle model", id="m7"),
        pytest.param("cortex-m33", cycles.Options(), "has no cycle model", id="m33"),
        pytest.param("cortex-m4", cycles.Options(multiplier="small"), "no small", id="m4_small"),
        pytest.param("cortex-m3", cycles.Options(), "dsp_mac", id="m3_smlad"),
    ],
)
def test_refusals(classes, core, options, fragment):
    with pytest.raises(TinyBNNError, match=fragment):
        cycles.estimate(classes["cortex-m4"]["v7"], CORES[core], options)


def test_the_plugin_names_exactly_the_classes_the_model_prices(classes):
    names = set(classes["cortex-m4"]["v7"])
    assert names == set(cycles.INSTRUCTION_CLASSES) | set(cycles.COUNT_CLASSES)


def test_a_core_without_timing_is_refused_not_guessed():
    core = replace(CORES["cortex-m4"], timing=None)
    with pytest.raises(TinyBNNError, match="no cycle model"):
        cycles.timing(core)


@pytest.mark.parametrize("core", ["cortex-m0", "cortex-m4"])
def test_profile_counts_classes_of_the_whole_inference(core):
    report = profile(golden_model(), core=core)
    assert report.classes is not None
    assert sum(report.classes[k] for k in cycles.INSTRUCTION_CLASSES) == report.instructions
    est = cycles.estimate(report.classes, CORES[core])
    assert est.instructions == report.instructions
    assert report.instructions < est.least <= est.assumed <= est.most < 3 * report.instructions


def test_profile_command_prints_cycles_time_and_current(tmp_path, capsys):
    path = tmp_path / "golden.pt"
    tinybnn.save(golden_model(), path)
    args = ["profile", str(path), "--target", "cortex-m4", "--target", "cortex-m7"]
    status = main([*args, "--clock", "32", "--ua-per-mhz", "40", "--inferences-per-second", "10"])
    out = capsys.readouterr().out
    assert status == 0, out
    line = next(ln for ln in out.splitlines() if ln.startswith("estimated cycles"))
    assumed = int(line.split(": ")[1].split()[0])
    assert f"estimated time at 32 MHz: {assumed / 32:,.0f} us" in out
    assert f"{40 * assumed * 10 / 1e6:,.1f} uA average" in out
    assert "no cycle estimate: cortex-m7 has no cycle model" in out
