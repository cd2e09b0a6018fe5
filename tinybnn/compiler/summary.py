"""Per-layer parameter, flash and MAC counts of a model, printed as a table (like larq's).

Every figure is read from the lowered program as the portable C holds it, so the summary and
the compiler cannot disagree: a stage's constant arrays (those of its reference kernel) go
to the layer that owns them, its thresholds and direction bits to the
batchnorm_sign it folds, everything else (weights, padding words, the input normalisation,
the classifier's bias) to the stage's first layer; its MACs (`Stage.macs`) too. Layers that
cost nothing on the device (flatten, a max-pool fused into a convolution) show zeros.

The bits column is each layer's bits per weight on the device (its kind's `weight_bits`):
1 binary, 8 int8, empty for a layer without weights; "1 / a8" or "8 / a8" where the layer
hands int8 activation codes on. Binary weights count the layer's weights that are binarised; other parameters count the
elements of the other constant arrays (int8 weights, biases, normalisation constants, one
threshold per channel), not the packed direction or padding words. The float32 equivalent
stores binary weights and other parameters as float32. Binary MACs are binary x binary
products; integer MACs are the first layer's and those of a classifier with int8 weights or
count inputs. A fresh model's thresholds may fit int16 where a trained one's need int32:
`Summary.trained_flash_bytes` prices them at the widest C type their sums allow, the most
the architecture can take once trained (what `tinybnn.train`'s flash budget checks).

Non-goals: RAM (activation buffers) and cycle counts; `tinybnn compile` reports the arena and
`tinybnn profile` measures instructions. A fast target's variants hold other arrays (subset
tables): `tinybnn compile --target ...` reports those.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..nn import Layer, Sequential, Value
from ..table import format_table
from .codegen import build
from .lowering import lower

COUNTS = ("binary_weights", "other_params", "flash_bytes", "binary_macs", "int_macs")
HEADINGS = ("binary w", "other params", "flash B", "binary MACs", "int MACs")
THRESHOLD_ARRAYS = ("th", "neg")  # owned by the batchnorm_sign a stage folds
CTYPE_BYTES = {"int16": 2, "int32": 4}


@dataclass(frozen=True)
class Row:
    """One layer's costs."""

    index: int
    kind: str
    note: str
    output: Value
    bits: int = 0  # bits per weight on the device (1 binary, 8 int8), 0 for no weights
    binary_weights: int = 0
    other_params: int = 0
    flash_bytes: int = 0
    binary_macs: int = 0
    int_macs: int = 0

    @property
    def bits_text(self) -> str:
        """The bits column: bits per weight, and "/ a8" where the layer gives int8 codes."""
        if not self.bits:
            return ""
        return f"{self.bits} / a8" if self.output.kind == "i8" else str(self.bits)


@dataclass(frozen=True)
class Summary:
    """Rows per layer and totals; `str()` gives the table."""

    input: Value
    class_names: list[str]
    rows: list[Row]
    # bytes the thresholds may grow by once trained: a fresh model's may fit int16 where the
    # sums' range needs int32
    threshold_headroom: int = 0

    def total(self, name: str) -> int:
        """The sum of one of `COUNTS` over all layers."""
        return sum(getattr(r, name) for r in self.rows)

    @property
    def flash_bytes(self) -> int:
        return self.total("flash_bytes")

    @property
    def trained_flash_bytes(self) -> int:
        """The most constants this architecture takes once trained, whatever its weights."""
        return self.flash_bytes + self.threshold_headroom

    @property
    def float32_bytes(self) -> int:
        """The same parameters (binary weights and all others) stored as float32."""
        return 4 * (self.total("binary_weights") + self.total("other_params"))

    @property
    def compression(self) -> float:
        return self.float32_bytes / self.flash_bytes

    def format(self) -> str:
        header = ["#", "layer", "output", "bits", *HEADINGS]
        body = [
            [str(r.index), f"{r.kind} {r.note}".rstrip(), str(r.output), r.bits_text]
            + [f"{getattr(r, n):,}" for n in COUNTS]
            for r in self.rows
        ]
        total = ["", "total", "", ""] + [f"{self.total(n):,}" for n in COUNTS]
        return "\n".join(
            [
                f"input {self.input}, {len(self.class_names)} classes: "
                + ", ".join(self.class_names),
                format_table([header, *body, total], left=(1, 2), rules=(0, len(body))),
                f"flash {_size(self.flash_bytes)}, float32 equivalent "
                f"{_size(self.float32_bytes)}, compression {self.compression:.1f}x",
            ]
        )

    __str__ = format


def summary(model: Sequential) -> Summary:
    """Per-layer costs of `model`, read from its lowering (see the module docstring)."""
    cm = build(lower(model), "model", header={})  # the portable C: reference kernels
    counts = [dict.fromkeys(COUNTS, 0) for _ in model.layers]
    notes = [layer.note for layer in model.layers]
    headroom = 0
    for cs in cm.stages:
        st = cs.stage
        head, last = st.layers[0], st.layers[-1]
        bmacs, imacs = st.macs()
        counts[head]["binary_macs"] += bmacs
        counts[head]["int_macs"] += imacs
        for a in cs.arrays:
            owner = last if a.key in THRESHOLD_ARRAYS else head
            counts[owner]["flash_bytes"] += a.nbytes
            if a.ctype != "uint32_t":  # packed words are not parameters
                counts[owner]["other_params"] += a.count
        threshold = getattr(st, "threshold", None)
        if threshold is not None:
            notes[last] = f"{threshold.ctype} thresholds"
            grow = CTYPE_BYTES[threshold.widest] - CTYPE_BYTES[threshold.ctype]
            headroom += grow * len(threshold.th)
    for i, layer in enumerate(model.layers):  # a composite layer's binary sub-layers too
        counts[i]["binary_weights"] = sum(
            m.weight.numel() for m in layer.modules() if isinstance(m, Layer) and m.binary_weights
        )
    rows = [
        Row(
            index=i,
            kind=layer.kind,
            note=notes[i],
            output=value,
            bits=weight_precision(layer),
            **counts[i],
        )
        for i, (layer, value) in enumerate(zip(model.layers, model.values, strict=True))
    ]
    return Summary(Value("int", tuple(model.input_shape)), list(model.class_names), rows, headroom)


def weight_precision(layer) -> int:
    """Bits per weight on the device, read from the layer kind's `weight_bits` (0: no weights)."""
    weight = getattr(layer, "weight", None)
    if weight is None or not weight.numel():
        return 0
    return layer.weight_bits(layer.config()) // weight.numel()


def _size(n: int) -> str:
    return f"{n:,} B" if n < 1024 else f"{n:,} B ({n / 1024:.1f} KiB)"
