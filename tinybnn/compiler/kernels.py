"""The C kernels header: where it lies, and the limits that Python shares with it.

`templates/c/tinybnn_kernels.h` holds every kernel; its `#define TB_<LIMIT> <n>` lines are
the one place the limits are written. They are read from the header here (`LIMITS`), the
variant choice checks them, and each generated model guards the ones it relies on with
`#error` (`requires` of a stage), so a kernels header with other limits cannot compile a
model silently out of bounds.
"""

from __future__ import annotations

import re
from pathlib import Path

KERNELS_HEADER = "tinybnn_kernels.h"

# The limits Python reads; the header must define each (checked on import).
LIMIT_NAMES = (
    "TB_VSL_MAX_SLICES",  # bit-sliced counters: the most slices (count bits) of a channel
    "TB_SLICES_MIN",  # ... and the fewest (the kernels keep 4 carry-save slices, then more)
    "TB_VST_GROUP_BITS",  # subset tables: input bits per lookup (8 patterns of 3 bits)
    "TB_SST_MAX_SPAN",  # subset-sum first layer: the most input steps one output reads
    "TB_SST_MAX_IN",  # ... and the most input channels (a table of 2^c_in sums per step)
    "TB_SUM_MAX",  # shortcuts: the largest |sum| an int16 sum buffer holds
    "TB_VSTQ_MAX_SLICES",  # codes out by subset tables: count slices (one byte per count)
    "TB_GSUM_VSL_MAX_T",  # bit-sliced global sum: the most steps (counts in a byte)
    "TB_RQ_MAX_SHIFT",  # requantisation to int8: the largest right shift
)


def template_dir() -> Path:
    """templates/c: inside the installed package, or beside it in a source checkout."""
    package = Path(__file__).resolve().parent.parent
    installed = package / "templates" / "c"
    return installed if installed.is_dir() else package.parent / "templates" / "c"


def read_limits(text: str) -> dict[str, int]:
    """The `#define TB_X <integer>` lines of a header, for the names in LIMIT_NAMES."""
    found = {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"^#define (TB_[A-Z0-9_]+) (\d+)\b", text, re.MULTILINE)
    }
    missing = [n for n in LIMIT_NAMES if n not in found]
    if missing:
        raise RuntimeError(f"{KERNELS_HEADER} does not define {', '.join(missing)}")
    return {n: found[n] for n in LIMIT_NAMES}


LIMITS: dict[str, int] = read_limits((template_dir() / KERNELS_HEADER).read_text())
