"""Model files: one torch file holding the architecture spec and the weights.

Layout of the saved dict (only plain containers, strings, numbers and tensors, so it loads
with `torch.load(..., weights_only=True)` and opening a file never runs code from it):

    {"format": "tinybnn-model", "version": 1, "tinybnn": "<package version>",
     "spec": Sequential.spec(), "state_dict": {...}}

A newer `version` than this package knows is refused rather than misread. Everything in the
file is checked before a model is built from it: the spec against each layer kind's schema,
and every tensor of the state_dict (`Sequential.from_spec`, `Sequential.check_state`, with
`tinybnn.ops.spec`); a refusal is one line naming the file and the layer.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

import torch

from . import __version__
from .errors import ModelError, TinyBNNError, one_line
from .nn import Sequential
from .ops.spec import shown

FORMAT = "tinybnn-model"
VERSION = 1


def save(model: Sequential, path: str | os.PathLike) -> None:
    """Write `model` to `path` atomically (a failed save leaves no half-written file)."""
    if not isinstance(model, Sequential):
        raise ModelError(f"tinybnn.save takes a tinybnn.nn.Sequential, not {type(model).__name__}")
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "tinybnn": __version__,
        "spec": model.spec(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
    }
    atomic_write(Path(path), lambda f: torch.save(payload, f))


def atomic_write(path: Path, write) -> None:
    """Call write(file object) on a temporary file next to `path`, then rename it into place.
    An `OSError` names `path`, never the temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as e:
        raise renamed(e, path) from None
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # mkstemp's 0600 would hide the file from other users
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise renamed(e, path) from None
        raise


def renamed(e: OSError, path: str | os.PathLike) -> OSError:
    """The same error about `path` (the destination the user named), not a temporary file."""
    return OSError(e.errno, e.strerror or one_line(e), str(path))


def load(path: str | os.PathLike) -> Sequential:
    """Read a model file written by `save`, or a larq (.h5, .keras) or QONNX (.onnx) model
    (`tinybnn.interop`); a one-line `TinyBNNError` for anything else."""
    path = Path(path)
    from . import interop  # here: it needs nn, which this module's importers load first

    if interop.is_foreign(path):
        return interop.load(path)
    if not path.is_file():
        why = (
            "is a directory, not a model file"
            if path.is_dir()
            else "not a model file (not a regular file)"
            if path.exists()
            else "no such model file"
        )
        raise TinyBNNError(f"{path}: {why}")
    if not _is_zipfile(path):
        raise TinyBNNError(
            f"{path}: not a tinybnn model file (not a torch zip archive, or truncated)"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds on foreign or damaged bytes
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            why = "it holds Python objects that tinybnn will not unpickle"
        elif isinstance(e, (RuntimeError, zipfile.BadZipFile)) and "zip" in str(e).lower():
            why = "truncated or not a torch zip archive"
        else:
            why = one_line(e, first_sentence=True)
        raise TinyBNNError(f"{path}: not a readable tinybnn model file ({why})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise TinyBNNError(f"{path}: not a tinybnn model file")
    version = payload.get("version")
    if version is None:
        raise TinyBNNError(f"{path}: the model format version is missing (a damaged model file)")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise TinyBNNError(f"{path}: the model format version {shown(version)} is not valid")
    if version > VERSION:
        raise TinyBNNError(
            f"{path}: model format version {version} is newer than this tinybnn supports "
            f"({VERSION}); upgrade tinybnn"
        )
    for key in ("spec", "state_dict"):
        if key not in payload:
            raise TinyBNNError(f"{path}: the model file's {key} is missing")
    try:
        model = Sequential.from_spec(payload["spec"])
        model.load_state_dict(model.check_state(payload["state_dict"]), strict=True)
    except TinyBNNError as e:
        raise TinyBNNError(f"{path}: {e}") from None
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as e:
        raise TinyBNNError(
            f"{path}: damaged tinybnn model file ({one_line(e, first_sentence=True)})"
        ) from None
    return model.eval()


def _is_zipfile(path: Path) -> bool:
    """zipfile.is_zipfile, which raises BadZipFile on a damaged ZIP64 locator."""
    try:
        return zipfile.is_zipfile(path)
    except zipfile.BadZipFile:
        return False
