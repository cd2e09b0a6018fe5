"""Per-layer parameter, flash and MAC counts of a model, printed as a table (like larq's).

Flash counts the constants the compiler emits (docs/lowering.md), per layer kind:

- binary weights, packed 32 to a uint32 word: a convolution's as [O][k][ceil(C/32)] words,
  plus one word per 32 input channels holding its padding value; the first layer's as
  [O][ceil(k*C/32)]; a dense layer's as [O][ceil(F/32)], except after `flatten` of a [C, T]
  value, where they follow its packing, channels per time step: [O][T * ceil(C/32)];
- int8 weights, one byte each; the classifier's bias, one int32 per class (zeros if it has
  none);
- the first layer's input normalisation, an int16 offset and an int16 multiplier per channel;
- `batchnorm_sign`, one threshold per channel, int16 when every threshold the compiler could
  choose fits, that is when |acc| + 1 <= 32767 (|acc| <= C*k after a binary convolution,
  <= F after a binary dense layer), else int32, always after the first layer (its int32
  accumulator is not bounded here; the compiler narrows to int16 when the trained values
  happen to fit); plus one direction bit per channel, packed in ceil(C/32) words.

Per-channel scales and the normalisation shift fold into thresholds or code, costing nothing.
Binary MACs are binary x binary products; integer MACs are the first layer's and those of
a classifier with int8 weights or count inputs. The float32 equivalent stores the same
parameters (weights, biases, normalisation constants, one threshold per channel) as float32.

Non-goals: RAM (activation buffers) and cycle counts; `tinybnn compile` reports the arena and
`tinybnn profile` measures cycles.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from .errors import ModelError
from .nn import Layer, Sequential, Value


@dataclass(frozen=True)
class Flow:
    """What reaches a layer: the value, the largest |accumulator| behind an `acc` value
    (None: int32, unbounded here) and the uint32 words a binary or count vector packs into."""

    value: Value
    acc_bound: int | None = None
    words: int = 0


@dataclass(frozen=True)
class Row:
    """One layer's costs. `other_params` counts int8 weights, biases, normalisation constants
    and folded thresholds (one per channel)."""

    index: int
    kind: str
    note: str
    output: Value
    binary_weights: int = 0
    other_params: int = 0
    flash_bytes: int = 0
    binary_macs: int = 0
    int_macs: int = 0


COUNTS = ("binary_weights", "other_params", "flash_bytes", "binary_macs", "int_macs")
HEADINGS = ("binary w", "other params", "flash B", "binary MACs", "int MACs")

# layer kind -> cost function (layer, what reaches it, its output) -> (row fields, what leaves)
CostFn = Callable[[Layer, Flow, Value], tuple[dict, Flow]]
COSTS: dict[str, CostFn] = {}


def cost(kind: str) -> Callable[[CostFn], CostFn]:
    """Decorator: register the cost function of a layer kind in `COSTS`."""

    def register(fn: CostFn) -> CostFn:
        COSTS[kind] = fn
        return fn

    return register


def words(n: int) -> int:
    """uint32 words holding n bits."""
    return math.ceil(n / 32)


def packed_words(v: Value) -> int:
    """Words per sample of a binary value: [C, T] packs channels per time step."""
    return v.shape[1] * words(v.shape[0]) if len(v.shape) == 2 else words(v.shape[0])


@cost("input_conv1d")
def _input_conv1d(layer, flow: Flow, out: Value) -> tuple[dict, Flow]:
    o, c, k = layer.out_channels, layer.in_channels, layer.kernel_size
    binary = layer.weights == "binary"
    row = dict(
        note=f"k={k} {layer.weights}",
        binary_weights=o * c * k if binary else 0,
        other_params=(0 if binary else o * c * k) + 2 * c,  # + offset and multiplier
        flash_bytes=(4 * o * words(k * c) if binary else o * c * k) + 4 * c,
        int_macs=o * c * k * out.shape[1],
    )
    return row, Flow(out, acc_bound=None)


@cost("binary_conv1d")
def _binary_conv1d(layer, flow: Flow, out: Value) -> tuple[dict, Flow]:
    o, c, k = layer.out_channels, layer.in_channels, layer.kernel_size
    row = dict(
        note=f"k={k}",
        binary_weights=o * c * k,
        flash_bytes=4 * (o * k + 1) * words(c),  # weights and the padding word(s)
        binary_macs=o * c * k * out.shape[1],
    )
    return row, Flow(out, acc_bound=c * k)


def _dense(layer, flow: Flow, out: Value, int8: bool) -> tuple[dict, Flow]:
    o, f = layer.out_features, layer.in_features
    classifier = out.kind == "scores"
    biases = o if layer.bias is not None else 0
    binary_macs = not int8 and flow.value.kind == "bin"  # else int8 weights or count inputs
    row = dict(
        note="classifier" if classifier else "",
        binary_weights=0 if int8 else o * f,
        other_params=(o * f if int8 else 0) + biases,
        flash_bytes=(o * f if int8 else 4 * o * flow.words) + (4 * o if classifier else 0),
        **{"binary_macs" if binary_macs else "int_macs": o * f},
    )
    return row, Flow(out, acc_bound=f)


@cost("binary_linear")
def _binary_linear(layer, flow: Flow, out: Value) -> tuple[dict, Flow]:
    return _dense(layer, flow, out, int8=False)


@cost("int8_linear")
def _int8_linear(layer, flow: Flow, out: Value) -> tuple[dict, Flow]:
    return _dense(layer, flow, out, int8=True)


@cost("batchnorm_sign")
def _batchnorm_sign(layer, flow: Flow, out: Value) -> tuple[dict, Flow]:
    c = layer.num_features
    fits16 = flow.acc_bound is not None and flow.acc_bound + 1 <= 2**15 - 1
    row = dict(
        note=f"int{16 if fits16 else 32} thresholds",
        other_params=c,
        flash_bytes=(2 if fits16 else 4) * c + 4 * words(c),
    )
    return row, Flow(out, words=packed_words(out))


@cost("maxpool1d")
def _maxpool1d(layer, flow: Flow, out: Value) -> tuple[dict, Flow]:
    words_out = packed_words(out) if out.kind == "bin" else 0
    return dict(note=f"k={layer.kernel_size}"), Flow(out, acc_bound=flow.acc_bound, words=words_out)


@cost("global_pool1d")
def _global_pool1d(layer, flow: Flow, out: Value) -> tuple[dict, Flow]:
    return dict(note=layer.mode), Flow(out, words=packed_words(out))


@cost("flatten")
def _flatten(layer, flow: Flow, out: Value) -> tuple[dict, Flow]:
    return dict(note=""), Flow(out, words=flow.words)


@dataclass(frozen=True)
class Summary:
    """Rows per layer and totals; `str()` gives the table."""

    input: Value
    class_names: list[str]
    rows: list[Row]

    def total(self, name: str) -> int:
        """The sum of one of `COUNTS` over all layers."""
        return sum(getattr(r, name) for r in self.rows)

    @property
    def flash_bytes(self) -> int:
        return self.total("flash_bytes")

    @property
    def float32_bytes(self) -> int:
        """The same parameters (binary weights and all others) stored as float32."""
        return 4 * (self.total("binary_weights") + self.total("other_params"))

    @property
    def compression(self) -> float:
        return self.float32_bytes / self.flash_bytes

    def format(self) -> str:
        header = ["#", "layer", "output", *HEADINGS]
        body = [
            [str(r.index), f"{r.kind} {r.note}".rstrip(), str(r.output)]
            + [f"{getattr(r, n):,}" for n in COUNTS]
            for r in self.rows
        ]
        total = ["", "total", ""] + [f"{self.total(n):,}" for n in COUNTS]
        table = [header, *body, total]
        widths = [max(len(cells[i]) for cells in table) for i in range(len(header))]
        left = {1, 2}  # text columns; numbers align right

        def line(cells: list[str]) -> str:
            return "  ".join(
                c.ljust(w) if i in left else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()

        rule = "-" * len(line(header))
        return "\n".join(
            [
                f"input {self.input}, {len(self.class_names)} classes: "
                + ", ".join(self.class_names),
                line(header),
                rule,
                *map(line, body),
                rule,
                line(total),
                f"flash {_size(self.flash_bytes)}, float32 equivalent "
                f"{_size(self.float32_bytes)}, compression {self.compression:.1f}x",
            ]
        )

    __str__ = format


def summary(model: Sequential) -> Summary:
    """Per-layer costs of `model` (see the module docstring for what is counted)."""
    flow = Flow(Value("int", tuple(model.input_shape)))
    rows = []
    for i, (layer, value) in enumerate(zip(model.layers, model.values, strict=True)):
        if layer.kind not in COSTS:
            raise ModelError(f"layer {i}: summary does not know layer kind {layer.kind!r}")
        counts, flow = COSTS[layer.kind](layer, flow, value)
        rows.append(Row(index=i, kind=layer.kind, output=value, **counts))
    return Summary(Value("int", tuple(model.input_shape)), list(model.class_names), rows)


def _size(n: int) -> str:
    return f"{n:,} B" if n < 1024 else f"{n:,} B ({n / 1024:.1f} KiB)"
