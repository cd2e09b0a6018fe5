"""The ops: one module per layer kind, each holding everything about it.

An op module defines the training layer (a registered `ops.base.Layer`: its forward pass,
its lowering, its float twin), the integer stage it lowers to (a `compiler.program.Stage`:
its numpy reference, constants and MACs) and the stage's C kernel variants (records of
`compiler.variants.Variant`: the C function, where it serves, the descriptor it needs).
The kernels themselves are in `templates/c/tinybnn_kernels.h`. docs/contributing.md says
how to add one.
"""

from . import (  # noqa: F401
    batchnorm_sign,
    binary_conv,
    dense,
    flatten,
    input_conv,
    int8_conv,
    pool,
    residual,
)
from .base import LAYERS, Layer, Value

__all__ = ["LAYERS", "Layer", "Value"]
