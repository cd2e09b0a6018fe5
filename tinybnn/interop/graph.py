"""The graph both importers read a foreign model into, its float evaluation, and its mapping
onto tinybnn's layers.

A larq (Keras) file and a QONNX file are each read into the same short list of `Op`s, in
PyTorch's layout ([N, C, T], flatten index c * T + t), holding the values the framework
computes with (weights already quantised: +-1, +-alpha, or float). Two things are done with
that list:

- `evaluate`: the framework's forward pass in float64 numpy (what larq or the QONNX
  executor computes, up to float rounding); it gives the framework's classes on the user's
  data without the framework.
- `to_tinybnn`: a `tinybnn.nn.Sequential` made of tinybnn's existing layers, and an
  `Exactness` record that says whether tinybnn's integer scores are the framework's logits
  exactly (up to a positive factor), and where not, why and by how much they can differ.

The framework's sign activation happens where its graph puts it (larq: in the next layer's
input quantizer; QONNX: a BipolarQuant or a MultiThreshold); tinybnn's happens in a
`batchnorm_sign` right after the BatchNorm. Between the two sit only operations that commute
with sign (max-pooling, global max, flatten), which are moved after it.

Non-goals: graphs with branches; float layers between binary ones; zero padding of binary
activations (tinybnn pads them with +1 or -1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import ModelError
from ..nn import (
    BatchNormSign,
    BinaryConv1d,
    BinaryLinear,
    Flatten,
    GlobalPool1d,
    InputConv1d,
    Int8Linear,
    MaxPool1d,
    Sequential,
)

# How the weights of a convolution or dense op are quantised by the framework.
BINARY, SCALED, FLOAT = "binary", "scaled", "float"


@dataclass
class Op:
    """One operation of the imported graph; `name` says where it came from (for refusals)."""

    name: str


@dataclass
class Conv(Op):
    weight: np.ndarray  # float64 [O][C][k], as the framework multiplies (quantised)
    quant: str  # BINARY (+-1), SCALED (+-alpha_o) or FLOAT
    stride: int = 1
    pad: int = 0  # steps on each side
    pad_value: float = 0.0  # what padding holds (after the input's sign, if any)
    sign_input: bool = False  # the framework takes sign() of the input first
    bias: np.ndarray | None = None


@dataclass
class Dense(Op):
    weight: np.ndarray  # float64 [O][F], F in PyTorch's flatten order
    quant: str
    sign_input: bool = False
    bias: np.ndarray | None = None


@dataclass
class BatchNorm(Op):
    mean: np.ndarray
    var: np.ndarray
    gamma: np.ndarray
    beta: np.ndarray
    eps: float


@dataclass
class Sign(Op):
    """+1 where x >= 0, else -1."""


@dataclass
class MaxPool(Op):
    kernel_size: int
    stride: int


@dataclass
class GlobalPool(Op):
    mode: str  # "mean" or "max"


@dataclass
class FlattenOp(Op):
    pass


@dataclass
class Softmax(Op):
    """Ignored for the class (argmax); the logits are compared."""


@dataclass
class Graph:
    """A foreign model: where it came from, its input [C, T] and its ops."""

    framework: str  # "larq" or "QONNX"
    input_shape: tuple[int, int]
    ops: list[Op]
    class_names: list[str] | None = None


def sign(x: np.ndarray) -> np.ndarray:
    return np.where(x >= 0, 1.0, -1.0)


def quantize_kernel(w: np.ndarray, quant: str) -> np.ndarray:
    """The weights the framework multiplies by: sign(w), mean|w| * sign(w) per output channel
    (axis 0; XNOR-Net, larq's magnitude_aware_sign), or w."""
    if quant == BINARY:
        return sign(w)
    if quant == SCALED:
        alpha = np.abs(w).reshape(w.shape[0], -1).mean(1)
        return sign(w) * alpha.reshape((-1,) + (1,) * (w.ndim - 1))
    return w.astype(np.float64)


# ---------------------------------------------------------------------------------------
# The framework's forward pass


def evaluate(graph: Graph, x: np.ndarray) -> np.ndarray:
    """Logits [N, K] of the graph on windows x [N, C, T] (float64, the framework's formulas)."""
    v = np.asarray(x, dtype=np.float64)
    for op in graph.ops:
        if isinstance(op, Conv):
            if op.sign_input:
                v = sign(v)
            v = np.pad(v, ((0, 0), (0, 0), (op.pad, op.pad)), constant_values=op.pad_value)
            k = op.weight.shape[2]
            t_out = (v.shape[2] - k) // op.stride + 1
            idx = np.arange(t_out)[:, None] * op.stride + np.arange(k)[None]
            windows = v[:, :, idx]  # [N, C, T', k]
            v = np.einsum("nctk,ock->not", windows, op.weight)
            if op.bias is not None:
                v = v + op.bias[None, :, None]
        elif isinstance(op, Dense):
            v = (sign(v) if op.sign_input else v) @ op.weight.T
            if op.bias is not None:
                v = v + op.bias
        elif isinstance(op, BatchNorm):
            shape = (1, -1) + (1,) * (v.ndim - 2)
            s = op.gamma / np.sqrt(op.var + op.eps)
            v = (v - op.mean.reshape(shape)) * s.reshape(shape) + op.beta.reshape(shape)
        elif isinstance(op, Sign):
            v = sign(v)
        elif isinstance(op, MaxPool):
            t_out = (v.shape[2] - op.kernel_size) // op.stride + 1
            idx = np.arange(t_out)[:, None] * op.stride + np.arange(op.kernel_size)[None]
            v = v[:, :, idx].max(-1)
        elif isinstance(op, GlobalPool):
            v = v.mean(-1) if op.mode == "mean" else v.max(-1)
        elif isinstance(op, FlattenOp):
            v = v.reshape(v.shape[0], -1)
    return v


# ---------------------------------------------------------------------------------------
# Onto tinybnn's layers


@dataclass
class Exactness:
    """How tinybnn's integer scores relate to the framework's logits.

    logits ~ factor * scores (per class, plus nothing: biases are inside the scores). With
    `exact`, the equality is exact: every layer is integer-exact in the framework's graph.
    Otherwise `reasons` says which layers are quantised by tinybnn and `head_error` bounds,
    per class, |factor * scores - logits| that the classifier's quantisation alone can
    cause (in logit units); a quantised first layer can change activations, which only data
    can measure (`agreement`).
    """

    exact: bool
    factor: float
    reasons: list[str] = field(default_factory=list)
    head_error: np.ndarray | None = None  # float64 [K]
    borderline: int = 0  # thresholds within float32 rounding of the framework's BatchNorm

    def describe(self) -> str:
        if self.exact:
            how = (
                "" if self.factor == 1 else f" up to a factor: logits = {self.factor:.6g} x scores"
            )
            text = f"integer-exact: tinybnn's scores are the framework's logits{how}"
            if self.borderline:
                text += (
                    f" (but {self.borderline} channels' thresholds lie within float32 rounding "
                    "of zero in the framework's BatchNorm: there the framework's own sign may "
                    "differ)"
                )
            return text
        text = "not integer-exact (" + "; ".join(self.reasons) + ")"
        if self.head_error is not None:
            text += (
                f"; the quantised classifier can move a logit by at most "
                f"{self.head_error.max():.4g} (logits ~ {self.factor:.6g} x scores)"
            )
        return text


class _Builder:
    """The walk from the graph's ops to tinybnn layers (see the module docstring)."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.layers: list = []
        self.state = "int"  # the value's kind: int, acc, bn (BatchNorm, sign pending), bin, count
        self.bn: BatchNorm | None = None
        self.bias: np.ndarray | None = None  # of the conv/dense before the pending BatchNorm
        self.acc_pooled = False
        self.after_bn: list[Op] = []  # max-pools, global max, flatten before the sign
        self.shape = graph.input_shape  # [C, T] or [F]
        self.count_length = 1  # T of a global average pool (counts = T * mean)
        self.reasons: list[str] = []
        self.exactness: Exactness | None = None

    def refuse(self, op: Op, why: str):
        raise ModelError(f"{op.name}: {why}")

    # the sign: emit the pending BatchNorm as a batchnorm_sign, then the ops moved after it
    def take_sign(self, op: Op) -> None:
        if self.state == "bin":
            return
        if self.state == "acc":  # a sign straight on the accumulator: an identity BatchNorm
            c = self.shape[0]  # (x - 0) * 1 / sqrt(1 + eps) + 0 has the sign of x
            self.bn = BatchNorm(op.name, np.zeros(c), np.ones(c), np.ones(c), np.zeros(c), 1e-5)
        elif self.state != "bn":
            self.refuse(op, f"takes the sign of {self.what()}; tinybnn has no such activation")
        if not 0 < self.bn.eps < 1:
            self.refuse(
                self.bn, f"epsilon {self.bn.eps:g}; tinybnn's BatchNorm takes one in (0, 1)"
            )
        layer = BatchNormSign(len(self.bn.mean), eps=float(self.bn.eps))
        mean = self.bn.mean - (self.bias if self.bias is not None else 0.0)  # BN(x + b)
        with torch.no_grad():
            layer.bn.running_mean.copy_(torch.tensor(mean))
            layer.bn.running_var.copy_(torch.tensor(self.bn.var))
            layer.bn.weight.copy_(torch.tensor(self.bn.gamma))
            layer.bn.bias.copy_(torch.tensor(self.bn.beta))
        self.layers.append(layer)
        self.state, self.bn, self.bias = "bin", None, None
        moved, self.after_bn = self.after_bn, []
        for later in moved:
            self.add(later)

    def what(self) -> str:
        return {
            "int": "the raw input",
            "acc": "an accumulator",
            "bn": "a BatchNorm output",
            "bin": "binary activations",
            "count": "pooled counts",
        }[self.state]

    def add(self, op: Op) -> None:
        if self.exactness is not None:
            if isinstance(op, BatchNorm):
                return  # folded into the classifier (`head`)
            if not isinstance(op, Softmax):
                self.refuse(op, "follows the classifier; tinybnn's classifier is the last layer")
        handler = {
            Conv: self.conv,
            Dense: self.dense,
            BatchNorm: self.batchnorm,
            Sign: self.take_sign,
            MaxPool: self.maxpool,
            GlobalPool: self.global_pool,
            FlattenOp: self.flatten,
            Softmax: self.softmax,
        }[type(op)]
        handler(op)

    def conv(self, op: Conv) -> None:
        o, c, k = op.weight.shape
        if self.state == "int":
            if op.sign_input:
                self.refuse(
                    op, "binarises the raw input; tinybnn's first layer takes int16 samples"
                )
            if op.pad and op.pad_value != 0:
                self.refuse(op, f"pads the raw input with {op.pad_value:g}; tinybnn pads it with 0")
            weights = "int8" if op.quant == FLOAT else "binary"
            layer = InputConv1d(
                c,
                o,
                k,
                stride=op.stride,
                padding=op.pad,
                weights=weights,
                scaling=op.quant == SCALED,
            )
            if op.quant == FLOAT:
                self.reasons.append(f"{op.name}: float weights, quantised to int8 per channel")
        else:
            if op.quant == FLOAT:
                self.refuse(op, "has float weights; tinybnn's hidden convolutions are binary")
            if self.state in ("bn", "acc") and op.sign_input:
                self.take_sign(op)
            if self.state != "bin":
                self.refuse(
                    op,
                    f"takes {self.what()}; tinybnn's hidden convolutions take binary activations",
                )
            pad_value = 1
            if op.pad:
                if op.pad_value not in (1.0, -1.0):
                    self.refuse(
                        op,
                        f"pads binary activations with {op.pad_value:g}; tinybnn pads them with "
                        "+1 or -1 (larq: pad_values=1.0; in PyTorch, pad nothing)",
                    )
                pad_value = int(op.pad_value)
            layer = BinaryConv1d(
                c,
                o,
                k,
                stride=op.stride,
                padding=op.pad,
                pad_value=pad_value,
                scaling=op.quant == SCALED,
            )
        with torch.no_grad():
            layer.weight.copy_(torch.tensor(op.weight))
        self.layers.append(layer)
        self.state, self.bias, self.acc_pooled = "acc", op.bias, False
        t = (self.shape[1] + 2 * op.pad - k) // op.stride + 1
        self.shape = (o, t)

    def batchnorm(self, op: BatchNorm) -> None:
        if self.after_bn:
            self.refuse(
                op,
                f"normalises after {self.after_bn[0].name}; tinybnn folds a "
                "BatchNorm only into the convolution or dense layer right before it",
            )
        if self.state != "acc":
            self.refuse(
                op,
                f"normalises {self.what()}; tinybnn folds a BatchNorm only into the "
                "convolution or dense layer right before it",
            )
        if len(op.mean) != self.shape[0]:
            self.refuse(op, f"has {len(op.mean)} channels for {self.shape[0]}")
        self.bn, self.state = op, "bn"

    def maxpool(self, op: MaxPool) -> None:
        if self.state == "acc" and not self.acc_pooled:
            self.layers.append(MaxPool1d(op.kernel_size, op.stride))
            self.acc_pooled = True
        elif self.state == "bn":
            self.after_bn.append(op)
            return
        elif self.state == "bin":
            self.layers.append(MaxPool1d(op.kernel_size, op.stride))
        else:
            self.refuse(
                op,
                f"pools {self.what()}; tinybnn max-pools an accumulator once, or "
                "binary activations",
            )
        t = (self.shape[1] - op.kernel_size) // op.stride + 1
        self.shape = (self.shape[0], t)

    def global_pool(self, op: GlobalPool) -> None:
        if self.state in ("bn", "acc") and op.mode == "max":
            self.after_bn.append(op)  # max commutes with sign
            return
        if self.state != "bin" or len(self.shape) != 2:
            self.refuse(
                op,
                f"pools {self.what()}; tinybnn pools binary activations over time "
                "(put a sign before it)",
            )
        self.layers.append(GlobalPool1d("sum" if op.mode == "mean" else "max"))
        if op.mode == "mean":
            self.state, self.count_length = "count", self.shape[1]
        self.shape = (self.shape[0],)

    def flatten(self, op: FlattenOp) -> None:
        if self.state in ("bn", "acc"):
            self.after_bn.append(op)
            return
        if self.state != "bin" or len(self.shape) != 2:
            self.refuse(op, f"flattens {self.what()}; tinybnn flattens binary activations")
        self.layers.append(Flatten())
        self.shape = (self.shape[0] * self.shape[1],)

    def softmax(self, op: Softmax) -> None:
        if self.exactness is None:
            self.refuse(op, "a softmax before the classifier; tinybnn ignores only a final softmax")

    def dense(self, op: Dense) -> None:
        if self.state in ("bn", "acc") and op.sign_input:
            self.take_sign(op)
        if self.state == "count" and op.sign_input:
            self.refuse(
                op,
                "takes the sign of an average; tinybnn feeds pooled counts to the "
                "classifier as they are",
            )
        if self.state not in ("bin", "count") or len(self.shape) != 1:
            self.refuse(
                op,
                f"takes {self.what()} of shape {list(self.shape)}; tinybnn's dense "
                "layers take flat binary activations (or pooled counts, the classifier)",
            )
        o, f = op.weight.shape
        if f != self.shape[0]:
            self.refuse(op, f"has {f} inputs for {self.shape[0]}")
        if self.is_head(op):
            self.head(op)
            return
        if op.quant == FLOAT or self.state != "bin":
            self.refuse(op, "a hidden dense layer must have binary weights on binary activations")
        layer = BinaryLinear(f, o, scaling=op.quant == SCALED)
        with torch.no_grad():
            layer.weight.copy_(torch.tensor(op.weight))
        self.layers.append(layer)
        self.state, self.bias, self.acc_pooled, self.shape = "acc", op.bias, True, (o,)

    def is_head(self, op: Dense) -> bool:
        ops = self.graph.ops
        rest = ops[ops.index(op) + 1 :]
        return all(isinstance(r, (BatchNorm, Softmax)) for r in rest)

    def head(self, op: Dense) -> None:
        """The classifier: the dense layer with any BatchNorm after it, as one matrix and bias
        acting on what tinybnn feeds it (+-1 bits, or counts = T * the framework's mean)."""
        ops = self.graph.ops
        w = op.weight / self.count_length
        b = op.bias.copy() if op.bias is not None else np.zeros(len(w))
        for bn in (r for r in ops[ops.index(op) + 1 :] if isinstance(r, BatchNorm)):
            s = bn.gamma / np.sqrt(bn.var + bn.eps)
            w, b = w * s[:, None], (b - bn.mean) * s + bn.beta
        mag = np.abs(w)
        c = float(mag.max())
        if c > 0 and np.all(mag == c) and np.all(b / c == np.round(b / c)):
            # +-c weights and biases in multiples of c: binary weights, exact up to c
            layer = BinaryLinear(w.shape[1], w.shape[0], bias=True)
            with torch.no_grad():
                layer.weight.copy_(torch.tensor(np.sign(w)))
                layer.bias.copy_(torch.tensor(b / c))
            self.exactness = Exactness(not self.reasons, c, self.reasons)
        else:
            layer = Int8Linear(w.shape[1], w.shape[0])
            delta = c / 127 if c > 0 else 1.0
            with torch.no_grad():
                layer.weight.copy_(torch.tensor(w))
                layer.bias.copy_(torch.tensor(b / delta))
                q = layer.integer_weight().double().numpy()
            qb = np.round(b / delta)  # as Int8Linear.integer_bias rounds it
            xmax = float(self.count_length)  # |count| <= T, |bit| = 1
            error = np.abs(q * delta - w).sum(1) * xmax + np.abs(qb * delta - b)
            self.reasons.append(f"{op.name}: a float classifier, quantised to int8")
            self.exactness = Exactness(False, delta, self.reasons, error)
        self.layers.append(layer)

    def finish(self, last: Op) -> Sequential:
        if self.exactness is None:
            self.refuse(
                last,
                "the model must end in a dense classifier (with an optional "
                "BatchNorm and softmax after it)",
            )
        return Sequential(
            *self.layers,
            input_shape=self.graph.input_shape,
            class_names=self.graph.class_names,
        ).eval()


def to_tinybnn(graph: Graph) -> tuple[Sequential, Exactness]:
    """The tinybnn model that computes `graph` (eval mode), and how exactly; a one-line
    `ModelError` naming the framework's layer for anything tinybnn has no layer for."""
    if not graph.ops:
        raise ModelError("the model has no layers")
    b = _Builder(graph)
    for op in graph.ops:
        b.add(op)
    model = b.finish(graph.ops[-1])
    b.exactness.borderline = float32_borderline(model)
    return model, b.exactness


def float32_borderline(model: Sequential) -> int:
    """Channels whose integer threshold sits where the framework's float32 BatchNorm could
    round the other way: |BN(acc)| at the accumulators on either side of the threshold is
    within 2^-21 of the magnitudes it is computed from (float32 keeps 24 bits)."""
    from ..compiler.lowering import lower

    count = 0
    for st in lower(model).stages:
        th = getattr(st, "threshold", None)
        if th is None:
            continue
        conv, bn = model.layers[st.layers[0]], model.layers[st.layers[-1]]
        if isinstance(conv, InputConv1d):
            with torch.no_grad():
                scale = conv.integer_weight()[1]
            preact = lambda acc, conv=conv, scale=scale: conv.to_preact(acc, scale)  # noqa: E731
        else:
            preact = conv.to_preact
        d = torch.float64
        s = bn.bn.weight.to(d) / torch.sqrt(bn.bn.running_var.to(d) + bn.eps)
        near = np.zeros(len(th.th), dtype=bool)
        for side in (0, 1):  # the accumulator at the threshold, and the one past it
            acc = torch.tensor(th.th + np.where(th.neg, side, -side), dtype=d).view(1, -1, 1)
            with torch.no_grad():
                x = preact(acc).view(-1)
                y = bn.eval_preact(preact(acc)).view(-1)
                size = (x.abs() + bn.bn.running_mean.to(d).abs()) * s.abs() + bn.bn.bias.to(d).abs()
            near |= (y.abs() <= size * 2.0**-21).numpy()
        count += int(near.sum())
    return count


@dataclass
class Agreement:
    """tinybnn's classes against the framework's on some windows."""

    windows: int
    same_class: int
    max_error: float  # largest |factor * score - logit| seen
    at_risk: int  # windows whose class the quantisation could change
    differs: np.ndarray = field(repr=False, default=None)  # bool [N]: another class
    risky: np.ndarray = field(repr=False, default=None)  # bool [N]: at risk

    def describe(self) -> str:
        text = (
            f"agrees with the framework's class on {self.same_class} of {self.windows} windows "
            f"({100 * self.same_class / self.windows:.1f}%); largest logit difference "
            f"{self.max_error:.4g}"
        )
        if self.at_risk:
            text += f"; the quantisation could change the class of {self.at_risk} windows"
        return text


def agreement(graph: Graph, model: Sequential, ex: Exactness, x: np.ndarray) -> Agreement:
    """Compare tinybnn's scores (eval mode, the integer path) with the framework's logits.

    A window is at risk when the quantisation could change its class: a first-layer
    pre-activation within its weights' rounding error of the BatchNorm's threshold, or a
    logit margin within the classifier's error bound (`Exactness.head_error`). Every window
    whose class differs is at risk (tested)."""
    x = np.asarray(x)
    logits = evaluate(graph, x)
    with torch.no_grad():
        scores = model(torch.tensor(x, dtype=torch.float64)).numpy()
    err = np.abs(ex.factor * scores - logits)
    risk = first_layer_risk(graph, model, x)
    if ex.head_error is not None:
        top = logits.argmax(1)
        margin = logits[np.arange(len(x)), top][:, None] - logits
        bound = ex.head_error[top][:, None] + ex.head_error[None]
        others = np.ones_like(margin, dtype=bool)
        others[np.arange(len(x)), top] = False
        risk |= ((margin <= bound) & others).any(1)
    differs = scores.argmax(1) != logits.argmax(1)
    return Agreement(
        len(x), int((~differs).sum()), float(err.max()), int(risk.sum()), differs, risk
    )


def first_layer_risk(graph: Graph, model: Sequential, x: np.ndarray) -> np.ndarray:
    """Windows [N] bool where a float first layer's int8 rounding could flip an activation:
    |sum((w - q * delta) * x)| <= sum(|w - q * delta| * |x|) = e, and the BatchNorm's sign
    differs between pre - e and pre + e somewhere (before any pooling, which only selects)."""
    conv, first = graph.ops[0], model.layers[0]
    risk = np.zeros(len(x), dtype=bool)
    bns = [op for op in graph.ops[1:3] if isinstance(op, BatchNorm)]
    if not isinstance(conv, Conv) or conv.quant != FLOAT or not bns:
        return risk
    with torch.no_grad():
        q, delta = first.integer_weight()
    rounding = np.abs(conv.weight - q.double().numpy() * delta.double().numpy()[:, None, None])
    head = Graph(graph.framework, graph.input_shape, [conv])
    pre = evaluate(head, x)
    bound = evaluate(
        Graph(
            graph.framework,
            graph.input_shape,
            [Conv(conv.name, rounding, FLOAT, conv.stride, conv.pad)],
        ),
        np.abs(x),
    )
    norm = Graph(graph.framework, graph.input_shape, [bns[0]])
    lo, hi = evaluate(norm, pre - bound), evaluate(norm, pre + bound)
    return ((lo >= 0) != (hi >= 0)).reshape(len(x), -1).any(1)
