"""Models from other BNN frameworks, and tinybnn models for them.

- `import_model(path)`: a larq model (`.h5`, `.keras`) or a QONNX graph (`.onnx`, as
  Brevitas exports it) as a tinybnn `Sequential`, with how exactly it computes the original
  (`graph.Exactness`). `tinybnn.load` calls it for those suffixes, so `tinybnn compile`,
  `summary`, `profile` and `evaluate` take such files as they are.
- `tinybnn.interop.qonnx_export.export(model, path)`: a tinybnn model as a QONNX graph.

Reading a file never executes code from it (JSON, HDF5 arrays, ONNX protobuf), and never
imports TensorFlow or PyTorch-side frameworks. `h5py` and `onnx` are the `interop` extra.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelError, TinyBNNError, one_line
from ..nn import Sequential
from .graph import Agreement, Exactness, Graph, agreement, to_tinybnn

FOREIGN = {".h5": "larq", ".hdf5": "larq", ".keras": "larq", ".onnx": "QONNX"}


def is_foreign(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in FOREIGN


@dataclass
class Imported:
    """A foreign model read into tinybnn."""

    path: Path
    graph: Graph
    model: Sequential
    exactness: Exactness

    def describe(self) -> str:
        return f"{self.path}: a {self.graph.framework} model, {self.exactness.describe()}"

    def agreement(self, x: np.ndarray) -> Agreement:
        """tinybnn's classes against the framework's on windows x [N, C, T]."""
        return agreement(self.graph, self.model, self.exactness, x)


def _require(module: str):
    try:
        return __import__(module)
    except ImportError:
        raise TinyBNNError(
            f"reading this file needs the {module} package: pip install 'tinybnn[interop]'"
        ) from None


def read_graph(path: str | os.PathLike) -> Graph:
    """The foreign file's graph; a one-line `TinyBNNError` that starts with the path."""
    path = Path(path)
    if not path.is_file():
        raise TinyBNNError(
            f"{path}: no such model file" if not path.exists() else f"{path}: not a file"
        )
    framework = FOREIGN.get(path.suffix.lower())
    try:
        if framework == "larq":
            _require("h5py")
            from . import keras

            return keras.read(path)
        if framework == "QONNX":
            _require("onnx")
            from . import qonnx_import

            return qonnx_import.read(path)
    except TinyBNNError as e:
        raise type(e)(f"{path}: {e}") from None
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, OSError) as e:
        # a config of unexpected types or a damaged HDF5/protobuf structure
        raise TinyBNNError(
            f"{path}: a damaged or unexpected {framework} file ({type(e).__name__}: "
            f"{one_line(e, first_sentence=True)})"
        ) from None
    raise TinyBNNError(f"{path}: not a larq (.h5, .keras) or QONNX (.onnx) file")


def import_model(path: str | os.PathLike) -> Imported:
    """Read a larq or QONNX file as a tinybnn model; refusals name the file and the layer."""
    path = Path(path)
    graph = read_graph(path)
    try:
        model, exactness = to_tinybnn(graph)
    except TinyBNNError as e:
        raise (ModelError if isinstance(e, ModelError) else TinyBNNError)(f"{path}: {e}") from None
    except (TypeError, ValueError, RuntimeError) as e:  # e.g. weights of another shape
        raise ModelError(
            f"{path}: cannot be mapped onto tinybnn's layers ({one_line(e, first_sentence=True)})"
        ) from None
    return Imported(path, graph, model, exactness)


def load(path: str | os.PathLike) -> Sequential:
    return import_model(path).model


__all__ = ["FOREIGN", "Imported", "import_model", "is_foreign", "load", "read_graph"]
