"""What a command writes may never be what it reads: the one check `train`, `convert` and
`compile` make before they read or write anything.

A path is "the same file" as an input when both exist and `os.path.samefile` says so (hard
links, symbolic links, `./x` and `x`), or, when one does not exist yet, when both resolve
to the same absolute path. Writing itself is atomic in each command (a temporary file or
directory beside the destination, then `os.replace`), so a refusal or a failure leaves
every existing file as it was.

Non-goals: files that the user may legitimately overwrite (an earlier model, an earlier
npz, earlier generated C) are overwritten; only the command's own inputs are protected.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from .errors import TinyBNNError


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether writing `a` would replace the file `b` (see the module docstring)."""
    a, b = Path(a), Path(b)
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def check_outputs(
    outputs: Iterable[str | os.PathLike],
    inputs: Mapping[str, object],
    advice: str = "give another output name",
) -> None:
    """Refuse (one line) if any of `outputs` is one of `inputs`: {what it is: its path}.

    Inputs that are not paths (a `Dataset`, a model object, None) are skipped."""
    for out in outputs:
        for what, source in inputs.items():
            if isinstance(source, (str, os.PathLike)) and same_file(out, source):
                raise TinyBNNError(f"{out}: is {what}; {advice}")
