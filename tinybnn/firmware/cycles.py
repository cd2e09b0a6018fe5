"""Estimated cycles, time and current of code run under QEMU, from published timings.

QEMU counts instructions; it models no pipeline, no bus and no flash. The counting plugin
(`firmware_tests/icount_plugin.c`) also says what kind each executed instruction was, and
this module prices each kind with the core's `Timing` (`tinybnn.compiler.targets`), which
copies its Technical Reference Manual's cycle table. The result is an estimate, with the
assumptions listed in docs/cycles.md; where the manual gives a range (the refill P after a
taken branch on M3/M4, their divides, M3's long multiplies), the estimate carries the
least and most cycles beside the assumed value.

Non-goals: measuring cycles (no cycle-accurate simulator here), caches, flash accelerators
and prefetch buffers, bus contention, interrupts, and the M7 and M33 (no model: see docs).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..compiler.targets import Core, Timing
from ..errors import TinyBNNError

MULTIPLIERS = ("fast", "small")  # Cortex-M0/M0+: the single-cycle or the 32-cycle multiplier
DEFAULT_CLOCK_MHZ = 64.0
DEFAULT_RATE_HZ = 20.0  # the earbud demo classifies a window every 50 ms


@dataclass(frozen=True)
class Options:
    """What the board adds to the core's timings."""

    wait_states: int = 0  # flash wait states per access (no prefetch, no cache)
    multiplier: str = "fast"


@dataclass(frozen=True)
class Cycles:
    """Estimated cycles of one run: the assumed figure and its range."""

    least: int
    assumed: int
    most: int
    instructions: int
    wait_cycles: int  # of `assumed`: flash wait states

    def format(
        self,
        core: str,
        clock_mhz: float = DEFAULT_CLOCK_MHZ,
        ua_per_mhz: float | None = None,
        rate_hz: float = DEFAULT_RATE_HZ,
    ) -> str:
        """Cycles, time at the clock and, with µA/MHz, the average current at `rate_hz`."""
        span = f" (range {self.least}-{self.most})" if self.least != self.most else ""
        waits = f", {self.wait_cycles} of them flash wait states" if self.wait_cycles else ""
        us = self.assumed / clock_mhz
        lines = [
            f"estimated cycles per inference: {self.assumed}{span}{waits}; "
            f"{self.assumed / max(self.instructions, 1):.2f} per instruction",
            f"estimated time at {clock_mhz:g} MHz: {us:,.0f} us"
            + (f" ({self.least / clock_mhz:,.0f}-{self.most / clock_mhz:,.0f})" if span else ""),
        ]
        if ua_per_mhz is not None:
            active = ua_per_mhz * clock_mhz
            duty = self.assumed * rate_hz / (clock_mhz * 1e6)
            lines.append(
                f"estimated current of inference at {rate_hz:g} windows/s: "
                f"{active * duty:,.1f} uA average ({active:,.0f} uA while running, "
                f"{100 * duty:.2f}% of the time); add the part's sleep current"
            )
        lines.append(
            f"Estimates from {core}'s published instruction timings applied to the "
            "instruction classes counted under QEMU, not measurements (docs/cycles.md)."
        )
        return "\n".join(lines)


def timing(core: Core) -> Timing:
    """The core's timings, or a one-line TinyBNNError for a core without a cycle model."""
    if core.timing is None:
        raise TinyBNNError(
            f"{core.name} has no cycle model (docs/cycles.md says why); "
            "its instruction counts stand"
        )
    return core.timing


def estimate(classes: dict[str, int], core: Core, options: Options = Options()) -> Cycles:
    """Price the plugin's class counts with the core's timings and the board's options."""
    t = timing(core)
    if options.multiplier not in MULTIPLIERS:
        raise TinyBNNError(f"multiplier {options.multiplier!r}: choose one of fast, small")
    if options.multiplier == "small" and t.small_mul is None:
        raise TinyBNNError(f"{core.name} has no small-multiplier option (M0 and M0+ do)")
    if options.wait_states < 0:
        raise TinyBNNError(f"flash wait states {options.wait_states}: give 0 or more")
    c = {k: 0 for k in (*INSTRUCTION_CLASSES, *COUNT_CLASSES)}
    c.update({k: int(v) for k, v in classes.items()})
    for kind, cost in (("dsp_mac", t.dsp_mac), ("div", t.div), ("mul_long", t.mul_long)):
        if c.get(kind) and cost is None:
            raise TinyBNNError(f"{c[kind]} {kind} instructions ran, which {core.name} has none of")
    taken = c["branch"] + c["branch_link"] + c["table_branch"] + c["cond_taken"] + c["pop_pc"]
    # Fetches of a core without prefetch or cache: one per 32-bit word of instructions, and
    # one more at each taken branch's target; each data read from flash is one access too.
    waits = options.wait_states * (c["halfwords"] // 2 + taken + c["code_reads"])
    mul = t.small_mul if options.multiplier == "small" else t.mul

    def total(pick: int) -> int:
        p = t.refill[pick]
        cycles = (
            c["alu"]
            + c["cond_not_taken"]
            + t.load * (c["load"] + c["store"])
            + t.pipelined * (c["load_pipelined"] + c["store_pipelined"])
            + c["load_multiple"] + c["load_multiple_regs"]
            + c["store_multiple"] + c["store_multiple_regs"]
            + (1 + p + t.call_extra) * (c["pop_pc"] + c["branch_link"]) + c["pop_pc_regs"]
            + (1 + p) * (c["branch"] + c["cond_taken"])
            + (2 + p) * c["table_branch"]
            + mul * c["mul"]
            + t.mla * c["mla"]
            + (t.dsp_mac or 0) * c["dsp_mac"]
        )  # fmt: skip
        for kind, cost in (("mul_long", t.mul_long), ("div", t.div)):
            if cost is not None:
                cycles += cost[pick] * c[kind]
        return cycles + waits

    instructions = sum(c[k] for k in INSTRUCTION_CLASSES)
    return Cycles(total(0), total(1), total(2), instructions, waits)


# The classes that count instructions (the others count registers, halfwords, reads).
INSTRUCTION_CLASSES = (
    "alu load load_pipelined store store_pipelined load_multiple store_multiple pop_pc "
    "branch branch_link table_branch cond_taken cond_not_taken mul mla mul_long dsp_mac div"
).split()


# The classes that count registers, halfwords and reads.
COUNT_CLASSES = "load_multiple_regs store_multiple_regs pop_pc_regs halfwords code_reads".split()


def add(segments: list[dict[str, int]]) -> dict[str, int]:
    """The class counts of several segments together."""
    out: dict[str, int] = {}
    for seg in segments:
        for k, v in seg.items():
            out[k] = out.get(k, 0) + v
    return out
