"""Ready-made architectures; each is a plain `tinybnn.nn.Sequential` that users may also write by hand."""

from __future__ import annotations

from .errors import ModelError
from .nn import (
    BatchNormSign,
    BinaryConv1d,
    BinaryLinear,
    BinaryResidual1d,
    GlobalPool1d,
    InputConv1d,
    Int8Conv1d,
    Int8Linear,
    MaxPool1d,
    Sequential,
)
from .ops.spec import SpecError


def conv_classifier(
    in_channels: int,
    length: int,
    num_classes: int,
    class_names: list[str] | None = None,
    widths: tuple[int, ...] = (32, 64, 64),
    kernel_size: int = 5,
    first_weights: str = "binary",
    head: str = "int8",
    pool: int = 2,
    quantizer: str = "approx",
    learnable_threshold: bool = False,
    rprelu: bool = False,
    scaling: bool = False,
    padding: str = "same",
    shortcuts: bool = False,
    precision: tuple[int | str, ...] | list[int | str] | None = None,
    last_conv: int | str = 1,
    codes_into_last: bool = False,
) -> Sequential:
    """A 1-D binary CNN for sensor windows.

    input_conv1d(k) -> [maxpool] -> bn+sign, then per further width: binary_conv1d(k=3,
    'same', pad +1) -> [maxpool] -> bn+sign; then global sum pooling and an int8 (or binary)
    classifier. Pooling sits before the sign, on the pre-activations, where it keeps more
    information than on +-1 values; a layer pools only while the sequence stays >= 4 long.
    padding="valid" pads no convolution, so every output reads real samples only: the model
    then streams exactly (docs/lowering.md, "Streaming"); "same" keeps the lengths.
    precision: bits per weight of each weighted layer, 1 (binary) or 8 (int8): the first
    layer, each further convolution, then the classifier (len(widths) + 1 values, e.g.
    [8, 1, 1, 8]). It decides `first_weights` and `head` (overriding them); a hidden
    convolution of 8 bits is an int8_conv1d with binary activations out (a batchnorm_sign
    after it). "8a8" (int8 weights) and "1a8" (binary weights), for a hidden convolution
    whose next convolution is 8 or "8a8", or for the last one: int8 activations out
    (activation="int8": BatchNorm, ReLU, int8 codes), which the next convolution reads as
    they are, or the global sum pooling sums for the classifier, e.g. [8, "8a8", 8, 8] or
    [8, 1, "1a8", 8]. None: the first layer's and the head's as `first_weights` and `head`
    say, hidden layers binary, the last convolution as `last_conv` says. A refused size or
    option names the layer it would have built.
    last_conv: the precision of the last convolution alone (1, 8, "8a8" or "1a8"), when
    `precision` is not given; the others as above. `tinybnn.train`'s defaults choose "8a8"
    when it fits the flash budget (`tinybnn.training.recipe`).
    codes_into_last: the convolution before the last keeps binary weights but hands int8
    codes ("1a8") to the last, whose `last_conv` is then 8 or "8a8" (three or more widths,
    `precision` not given); `tinybnn.train`'s defaults choose it with "8a8" when it fits.

    shortcuts=True: each binary convolution whose width equals the one before it, from the
    third layer on, becomes a residual block (where it and the one before it are binary) (`BinaryResidual1d`: the integer sums of the
    convolution before it plus its own, then the pool), Bi-Real / ReActNet style; the
    batchnorm_sign before it moves into the block. Where widths change (32 -> 64) the layer
    stays plain. Shortcuts add integer sums, so they need scaling=False, and sums of equal
    lengths, so padding="same".
    """
    if not widths:
        raise ModelError("conv_classifier needs at least one width")
    bits = check_precision(precision, len(widths))
    if bits is not None:
        first_weights = "int8" if bits[0] == 8 else "binary"
        head = "int8" if bits[-1] == 8 else "binary"
    elif last_conv != 1 or isinstance(last_conv, bool):  # first layer, head: as they say
        if len(widths) < 2 or isinstance(last_conv, bool) or last_conv not in (8, *CODES_OUT):
            raise ModelError(
                f"conv_classifier: last_conv must be 1, 8, '{INT8_ACT}' or '{BIN_ACT}' for the "
                f"last of two or more convolutions, not {last_conv!r} with widths {list(widths)}"
            )
        bits = (1,) * (len(widths) - 1) + (last_conv, 1)
    if codes_into_last:
        if precision is not None or len(widths) < 3 or last_conv not in (8, INT8_ACT):
            raise ModelError(
                f"conv_classifier: codes_into_last needs three or more widths, a last_conv of 8 "
                f"or '{INT8_ACT}' (not {last_conv!r}) and no precision"
            )
        bits = bits[:-3] + (BIN_ACT,) + bits[-2:]
    if padding not in ("same", "valid"):
        raise ModelError(f"conv_classifier: padding must be 'same' or 'valid', not {padding!r}")
    if shortcuts and scaling:
        raise ModelError(
            "conv_classifier: shortcuts add integer sums of +-1 products, which scaling "
            "factors would weigh differently; use one of shortcuts and scaling"
        )
    if shortcuts and padding != "same":
        raise ModelError(
            "conv_classifier: a shortcut adds sums of equal length, so its block pads ('same'); "
            "use one of shortcuts and padding='valid'"
        )
    binary = [bits is None or bits[i] == 1 for i in range(len(widths))]
    residual = [
        shortcuts and i >= 2 and widths[i] == widths[i - 1] and binary[i] and binary[i - 1]
        for i in range(len(widths))
    ]
    layers = []

    def add(kind, *args, **kwargs) -> None:
        """Append a layer; a refused argument names the layer's place in the model."""
        try:
            layers.append(kind(*args, **kwargs))
        except SpecError as e:
            raise e.at(f"layer {len(layers)} ({e.kind})") from None

    sign = dict(quantizer=quantizer, learnable_threshold=learnable_threshold, rprelu=rprelu)
    t = length
    c = in_channels
    for i, w in enumerate(widths):
        if i == 0:
            odd = isinstance(kernel_size, int) and kernel_size % 2
            add(
                InputConv1d,
                c,
                w,
                kernel_size,
                padding="same" if odd and padding == "same" else 0,
                weights=first_weights,
                scaling=scaling,
            )
        elif residual[i]:
            add(BinaryResidual1d, w, 3, pad_value=1, **sign)
        elif bits is not None and bits[i] in (8, INT8_ACT):
            codes_in = bits[i - 1] in CODES_OUT  # the layer before gives int8 codes (pad 0)
            act = "int8" if bits[i] == INT8_ACT else "none"
            add(
                Int8Conv1d, c, w, 3, padding=padding, pad_value=0 if codes_in else 1, activation=act
            )
        else:
            act = "int8" if bits is not None and bits[i] == BIN_ACT else "none"
            add(
                BinaryConv1d, c, w, 3, padding=padding, pad_value=1, scaling=scaling, activation=act
            )
        if padding == "valid":
            t -= layers[-1].kernel_size - 1
        if pool > 1 and t // pool >= 4:
            add(MaxPool1d, pool)
            t //= pool
        codes_out = bits is not None and bits[i] in CODES_OUT  # int8 codes go on, no sign
        if not codes_out and (i + 1 == len(widths) or not residual[i + 1]):
            # (else the next block holds the sign)
            add(BatchNormSign, w, **sign)
        c = w
    add(GlobalPool1d, "sum")
    add(Int8Linear if head == "int8" else BinaryLinear, c, num_classes, bias=True)
    return Sequential(*layers, input_shape=(in_channels, length), class_names=class_names)


PRECISIONS = (1, 8)
INT8_ACT = "8a8"  # a hidden convolution with int8 weights and int8 activations out
BIN_ACT = "1a8"  # a hidden convolution with binary weights and int8 activations out
CODES_OUT = (INT8_ACT, BIN_ACT)


def check_precision(precision, layers: int) -> tuple[int | str, ...] | None:
    """`precision` as a tuple of `layers` + 1 bit widths (1 or 8, or "8a8" / "1a8" for a
    hidden convolution with int8 codes out, read by the next convolution, of int8 weights,
    or by the global sum pooling after the last), or None; refused in one line."""
    if precision is None:
        return None
    bits = tuple(precision)

    def ok(i: int, b) -> bool:
        if isinstance(b, str) and b in CODES_OUT:  # hidden, and what follows reads codes
            return 0 < i < layers and (i == layers - 1 or bits[i + 1] in (8, INT8_ACT))
        return not isinstance(b, bool) and isinstance(b, int) and b in PRECISIONS

    if len(bits) != layers + 1 or not all(ok(i, b) for i, b in enumerate(bits)):
        raise ModelError(
            f"conv_classifier: precision must be {layers + 1} values of 1 or 8 (the first "
            f"layer, {layers - 1} hidden convolutions, the classifier), or '{INT8_ACT}' / "
            f"'{BIN_ACT}' for a hidden convolution with int8 activations out that is the last "
            f"or whose next convolution is 8 or '{INT8_ACT}', not {list(bits)}"
        )
    return bits
