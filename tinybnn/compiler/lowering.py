"""Lowering: the walk from a tinybnn `Sequential` to a `Program` of integer stages.

Each layer lowers itself (`Layer.lower`, in its op module); this walk keeps the position,
the shapes, and the fusion rule that a convolution or dense layer takes an optional max-pool
on its accumulator and its batchnorm_sign into one stage (`take_pool_and_sign`).
"""

from __future__ import annotations

from ..errors import ModelError
from ..nn import Sequential, describe, infer
from ..ops.batchnorm_sign import BatchNormSign
from ..ops.flatten import Flatten
from ..ops.input_conv import InputConv1d
from ..ops.pool import MaxPool1d
from .program import Program, Stage


class Lowerer:
    """Walks the layers; each layer's `lower` emits its stage, fusing the layers after it
    that its kernel computes (a max-pool on the accumulator, the batchnorm_sign)."""

    def __init__(self, model):
        self.model = model
        self.layers = list(model.layers)
        self.values = model.values
        self.stages: list[Stage] = []
        self.i = 0

    def where(self, i: int) -> str:
        return describe(i, self.layers[i])

    def in_shape(self, i: int) -> tuple[int, ...]:
        return tuple(self.model.input_shape) if i == 0 else self.values[i - 1].shape

    def layer(self, i: int):
        """Layer i, or None past the end."""
        return self.layers[i] if 0 <= i < len(self.layers) else None

    def run(self) -> list[Stage]:
        """Lower every layer; a refusal that does not name its layer gets the layer's name."""
        while self.i < len(self.layers):
            i = self.i
            try:
                self.layers[i].lower(self)
            except ModelError as e:
                if str(e).startswith("layer "):
                    raise
                raise ModelError(f"{self.where(i)}: {e}") from None
        return self.stages

    def take_pool_and_sign(self, conv_index: int, preact, sign_optional: bool = False):
        """After a conv/dense at `conv_index`: optional maxpool on acc, then the required
        batchnorm_sign. Returns (pool_k, pool_s, last layer index, f), f the function of
        acc whose sign is the output.

        With `sign_optional` (a layer whose integer sums a shortcut may carry on), a missing
        batchnorm_sign gives f = None and the last layer is the conv's or its pool's."""
        j = conv_index + 1
        pool_k = pool_s = 1
        if isinstance(self.layer(j), MaxPool1d):
            pool_k, pool_s = self.layers[j].kernel_size, self.layers[j].stride
            j += 1
        bn = self.layer(j)
        if not isinstance(bn, BatchNormSign):
            if sign_optional and self.values[j - 1].kind == "sum":
                return pool_k, pool_s, j - 1, None
            raise ModelError(
                f"{self.where(conv_index)}: must be followed by batchnorm_sign (optionally after "
                "maxpool1d); tinybnn compiles no float layers between binary ones"
            )

        def f(acc):
            return bn.eval_preact(preact(acc))

        return pool_k, pool_s, j, f

    def flat_source_shape(self, i: int) -> tuple[int, ...]:
        """The shape of the packed buffer behind a flat input: [C, T] through a flatten."""
        if isinstance(self.layer(i - 1), Flatten):
            return self.in_shape(i - 1)
        return self.in_shape(i)

    def emit(self, stage: Stage, last: int) -> None:
        self.stages.append(stage)
        self.i = last + 1


def lower(model) -> Program:
    """Lower a model (any mode; it is put in eval mode) to an integer program."""
    if not isinstance(model, Sequential):
        raise ModelError(f"can only compile a tinybnn.nn.Sequential, not {type(model).__name__}")
    infer(list(model.layers), model.input_shape)  # re-check: layers may have been swapped
    if not isinstance(model.layers[0], InputConv1d):
        raise ModelError(f"{describe(0, model.layers[0])}: the first layer must be input_conv1d")
    model.check_state()  # finite weights, integer buffers within their ranges
    model.eval()
    stages = Lowerer(model).run()
    first = model.layers[0]
    return Program(
        stages=stages,
        in_channels=model.input_shape[0],
        length=model.input_shape[1],
        class_names=list(model.class_names),
        input_range=first.input_range,
        layer_kinds=[layer.kind for layer in model.layers],
    )
