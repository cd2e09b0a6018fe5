"""tinybnn: binarized neural networks for 1-D sensor signals, compiled to dependency-free C."""

__version__ = "0.1.0"

from . import nn  # noqa: E402
from .compiler.api import compile  # noqa: E402
from .compiler.summary import summary  # noqa: E402
from .errors import ModelError, TinyBNNError  # noqa: E402
from .modelfile import load, save  # noqa: E402
from .training.train import train  # noqa: E402

__all__ = [
    "nn",
    "compile",
    "load",
    "save",
    "summary",
    "train",
    "ModelError",
    "TinyBNNError",
    "__version__",
]
