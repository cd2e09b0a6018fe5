"""Read a QONNX graph (as Brevitas exports a 1-D binary net) into the importers' `Graph`,
with the `onnx` package only (protobuf: nothing in the file is executed).

The data path must be a chain from the graph's input to its output. Nodes whose inputs are
all constants (the weights' `BipolarQuant` or `Quant`, `Constant`, shapes) are evaluated
here; on the data path, the nodes read are `Conv` (1-D), `BatchNormalization`, `MaxPool`,
`GlobalAveragePool`, `GlobalMaxPool`, `ReduceMean`/`ReduceMax` over time, `Gemm`, `MatMul`
(with an `Add` for its bias), `BipolarQuant` (the sign), `MultiThreshold` (one threshold per
channel, bipolar output), `Flatten`, `Reshape`, `Squeeze`/`Unsqueeze` (shape only),
`Identity`, `Dropout` and a final `Softmax`. A `Quant` on the data path is read only where it
is the identity on int16 samples. Anything else is refused with one line naming the node.

Weights are classified by their values: all +-1 is binary, +-alpha per output channel is
scaled (XNOR-Net), anything else is float (tinybnn quantises it to int8).

Non-goals: graphs with branches (residual adds), 2-D convolutions, multi-bit activations.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ModelError, TinyBNNError
from .graph import (
    BINARY,
    FLOAT,
    SCALED,
    BatchNorm,
    Conv,
    Dense,
    FlattenOp,
    GlobalPool,
    Graph,
    MaxPool,
    Op,
    Sign,
    Softmax,
)

SHAPE_ONLY = {"Flatten", "Reshape", "Squeeze", "Unsqueeze"}
MAX_FILE_BYTES = 64 << 20


def classify(w: np.ndarray) -> str:
    """BINARY (+-1), SCALED (+-alpha_o > 0 per output channel, axis 0) or FLOAT."""
    mag = np.abs(w).reshape(w.shape[0], -1)
    if np.all(mag == 1):
        return BINARY
    if np.all(mag > 0) and np.all(mag == mag[:, :1]):
        return SCALED
    return FLOAT


def quant(x: np.ndarray, scale, zeropt, bitwidth, signed: int, narrow: int, mode: str):
    """QONNX `Quant`: y = (clip(round(x / scale + zeropt)) - zeropt) * scale."""
    bits = float(np.asarray(bitwidth).reshape(-1)[0])
    if mode.upper() not in ("ROUND", "HALF_EVEN"):
        raise TinyBNNError(f"rounding_mode {mode}; tinybnn reads ROUND")
    lo = -(2 ** (bits - 1)) + narrow if signed else 0
    hi = 2 ** (bits - 1) - 1 if signed else 2**bits - 1 - narrow
    q = np.clip(np.round(x / scale + zeropt), lo, hi)
    return (q - zeropt) * scale


def read(path: Path) -> Graph:
    import onnx
    from onnx import numpy_helper

    if path.stat().st_size > MAX_FILE_BYTES:
        raise TinyBNNError("larger than a small BNN's graph")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf raises its own kinds on foreign bytes
        raise TinyBNNError(f"not a readable ONNX file ({type(e).__name__})") from None
    g = model.graph
    consts: dict[str, np.ndarray] = {}
    for t in g.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            raise TinyBNNError(f"its tensor {t.name} is in an external file; embed the weights")
        consts[t.name] = numpy_helper.to_array(t).astype(np.float64)
    inputs = [i for i in g.input if i.name not in consts]
    if len(inputs) != 1 or len(g.output) != 1:
        raise TinyBNNError("tinybnn reads graphs with one input and one output")
    dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) != 3 or dims[1] < 1 or dims[2] < 1:
        raise TinyBNNError(
            f"input {inputs[0].name} of shape {dims}; tinybnn reads [batch, channels, steps]"
        )
    reader = _Reader(consts, inputs[0].name, (dims[1], dims[2]))
    for i, node in enumerate(g.node):
        reader.node(i, node)
    if reader.data != g.output[0].name:
        raise TinyBNNError(f"the chain from the input does not reach the output {g.output[0].name}")
    return Graph("QONNX", (dims[1], dims[2]), reader.ops)


def _attrs(node) -> dict:
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


class _Reader:
    def __init__(self, consts: dict, data: str, shape: tuple[int, int]):
        self.consts = consts
        self.data = data  # the name of the tensor on the data path
        self.phys = [1, shape[0], shape[1]]  # its shape, batch included
        self.tdim: int | None = 2  # where time is in it (None once pooled or flattened)
        self.cdim: int | None = 1
        self.flat = False
        self.ops: list[Op] = []
        self.where = ""

    def refuse(self, why: str):
        raise ModelError(f"{self.where}: {why}")

    def const(self, name: str) -> np.ndarray:
        if name not in self.consts:
            self.refuse(f"its input {name} is not a constant")
        return self.consts[name]

    def node(self, i: int, node) -> None:
        self.where = f"node {i} ({node.op_type} '{node.name}')"
        ins = [n for n in node.input if n]
        attrs = _attrs(node)
        if all(n in self.consts for n in ins):
            self.constant(node, ins, attrs)
            return
        if self.data not in ins or sum(n not in self.consts for n in ins) != 1:
            self.refuse("is not on a single chain from the input; tinybnn reads chains")
        if ins[0] != self.data:
            self.refuse(f"takes the data as input {ins.index(self.data)}, not 0")
        handler = getattr(self, "op_" + node.op_type, None)
        if handler is None:
            self.refuse(
                "tinybnn has no such layer (it reads Conv, BatchNormalization, MaxPool, "
                "GlobalAveragePool, GlobalMaxPool, Gemm, MatMul, BipolarQuant, MultiThreshold, "
                "Flatten and a final Softmax)"
            )
        if len(node.output) != 1:
            self.refuse("has more than one output")
        handler(ins, attrs)
        self.data = node.output[0]

    # -- constants

    def constant(self, node, ins, attrs) -> None:
        op = node.op_type
        v = [self.consts[n] for n in ins]
        if op == "BipolarQuant":
            out = np.where(v[0] >= 0, 1.0, -1.0) * v[1]
        elif op == "Quant":
            out = quant(
                *v[:4],
                attrs.get("signed", 1),
                attrs.get("narrow", 0),
                attrs.get("rounding_mode", "ROUND"),
            )
        elif op == "Constant" and "value" in attrs:
            from onnx import numpy_helper

            out = numpy_helper.to_array(attrs["value"]).astype(np.float64)
        elif op in ("Identity", "Cast"):
            out = v[0]
        elif op == "Transpose":
            out = np.transpose(v[0], attrs.get("perm"))
        elif op == "Mul":
            out = v[0] * v[1]
        else:
            self.refuse("a computation on constants that tinybnn does not evaluate")
        self.consts[node.output[0]] = np.asarray(out, dtype=np.float64)

    # -- the data path

    def spatial(self) -> None:
        if self.flat or self.tdim is None:
            self.refuse(f"takes a flat value of shape {self.phys}; tinybnn needs [channels, steps]")

    def op_Identity(self, ins, attrs):
        pass

    op_Dropout = op_Identity

    def op_Quant(self, ins, attrs):
        scale, zp, bits = (self.const(n) for n in ins[1:4])
        identity = (
            not self.ops
            and np.all(scale == 1)
            and np.all(zp == 0)
            and attrs.get("signed", 1) == 1
            and float(bits.reshape(-1)[0]) >= 16
        )
        if not identity:
            self.refuse(
                "a multi-bit activation quantizer; tinybnn's activations are binary "
                "(a Quant is read only as the identity on int16 input samples)"
            )

    def op_BipolarQuant(self, ins, attrs):
        scale = self.const(ins[1])
        if scale.size != 1 or float(scale.reshape(-1)[0]) != 1.0:
            self.refuse("a sign with a scale other than 1; tinybnn's activations are +-1")
        self.ops.append(Sign(self.where))

    def op_MultiThreshold(self, ins, attrs):
        th = self.const(ins[1])
        c = self.phys[self.cdim] if self.cdim is not None else None
        if th.ndim != 2 or th.shape[1] != 1 or th.shape[0] not in (1, c):
            self.refuse(f"thresholds of shape {list(th.shape)}; tinybnn reads one per channel")
        bipolar = attrs.get("out_dtype") == "BIPOLAR" or (
            attrs.get("out_scale", 1.0) == 2.0 and attrs.get("out_bias", 0.0) == -1.0
        )
        if not bipolar:
            self.refuse("a multi-level or non-bipolar threshold; tinybnn's activations are +-1")
        th = np.broadcast_to(th[:, 0], (c,)).astype(np.float64)
        last = self.ops[-1] if self.ops else None
        if isinstance(last, BatchNorm):  # BN(x) >= th  <=>  BN(x) - th >= 0
            last.beta = last.beta - th
        else:  # (x - th) / sqrt(1 + eps) >= 0  <=>  x >= th
            self.ops.append(BatchNorm(self.where, th, np.ones(c), np.ones(c), np.zeros(c), 1e-5))
        self.ops.append(Sign(self.where))

    def op_Conv(self, ins, attrs):
        self.spatial()
        if len(self.phys) != 3:
            self.refuse(f"a convolution of a value of shape {self.phys}; tinybnn's are 1-D")
        w = self.const(ins[1])
        if w.ndim != 3:
            self.refuse(f"weights of shape {list(w.shape)}; tinybnn reads 1-D convolutions")
        if attrs.get("group", 1) != 1 or list(attrs.get("dilations", [1])) != [1]:
            self.refuse("groups or dilations; tinybnn reads plain convolutions")
        if attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
            self.refuse(f"auto_pad={attrs['auto_pad']}; give explicit pads")
        pads = list(attrs.get("pads", [0, 0]))
        if len(pads) != 2 or pads[0] != pads[1]:
            self.refuse(f"pads {pads}; tinybnn pads both sides alike")
        (s,) = attrs.get("strides", [1])
        o, c, k = w.shape
        if c != self.phys[1]:
            self.refuse(f"{c} input channels for {self.phys[1]}")
        bias = self.const(ins[2]) if len(ins) > 2 else None
        sign_input = bool(self.ops) and isinstance(self.ops[-1], Sign)
        self.ops.append(
            Conv(
                self.where,
                w,
                classify(w),
                stride=s,
                pad=pads[0],
                pad_value=0.0,
                sign_input=sign_input,
                bias=bias,
            )
        )
        t = (self.phys[2] + 2 * pads[0] - k) // s + 1
        self.phys = [1, o, t]

    def op_BatchNormalization(self, ins, attrs):
        gamma, beta, mean, var = (self.const(n) for n in ins[1:5])
        self.ops.append(
            BatchNorm(self.where, mean, var, gamma, beta, float(attrs.get("epsilon", 1e-5)))
        )

    def op_MaxPool(self, ins, attrs):
        self.spatial()
        (k,) = attrs.get("kernel_shape", [0])
        (s,) = attrs.get("strides", [k])
        if (
            any(attrs.get("pads", [0, 0]))
            or attrs.get("ceil_mode", 0)
            or list(attrs.get("dilations", [1])) != [1]
        ):
            self.refuse("padding, ceil_mode or dilations; tinybnn's max-pool has none")
        self.ops.append(MaxPool(self.where, k, s))
        self.phys = [1, self.phys[1], (self.phys[2] - k) // s + 1]

    def pooled(self, mode: str, keepdims: bool) -> None:
        self.ops.append(GlobalPool(self.where, mode))
        if keepdims:
            self.phys[self.tdim] = 1
        else:
            del self.phys[self.tdim]
            if self.cdim > self.tdim:
                self.cdim -= 1
        self.tdim = None

    def op_GlobalAveragePool(self, ins, attrs):
        self.spatial()
        self.pooled("mean", True)

    def op_GlobalMaxPool(self, ins, attrs):
        self.spatial()
        self.pooled("max", True)

    def _reduce(self, ins, attrs, mode):
        self.spatial()
        axes = attrs.get("axes")
        if axes is None and len(ins) > 1:
            axes = self.const(ins[1]).astype(int).tolist()
        axes = sorted(a % len(self.phys) for a in (axes or []))
        others = [a for a in axes if a != self.tdim]
        if self.tdim not in axes or any(self.phys[a] != 1 for a in others):
            self.refuse(f"reduces axes {axes} of {self.phys}; tinybnn pools over time only")
        for a in reversed(others):
            if not attrs.get("keepdims", 1):
                del self.phys[a]
                self.tdim -= a < self.tdim
                self.cdim -= a < self.cdim
        self.pooled(mode, bool(attrs.get("keepdims", 1)))

    def op_ReduceMean(self, ins, attrs):
        self._reduce(ins, attrs, "mean")

    def op_ReduceMax(self, ins, attrs):
        self._reduce(ins, attrs, "max")

    def reshaped(self, new: list[int]) -> None:
        """A shape change: a flatten where [C, T] becomes one axis, else only bookkeeping."""
        n = int(np.prod(self.phys))
        if n != int(np.prod(new)):
            self.refuse(f"reshapes {self.phys} to {new}")
        big = [d for d in self.phys[1:] if d != 1]
        new_big = [d for d in new[1:] if d != 1]
        if self.tdim is not None and not self.flat and len(big) == 2 and new_big == [n]:
            self.ops.append(FlattenOp(self.where))
            self.flat, self.tdim, self.cdim = True, None, None
        elif big != new_big:
            self.refuse(f"reshapes {self.phys} to {new}; tinybnn reads only a flatten")
        self.phys = list(new)
        if not self.flat and self.tdim is not None:  # channels and time keep their order
            sizes = [i for i, d in enumerate(new) if d != 1 and i > 0]
            if len(sizes) == 2:
                self.cdim, self.tdim = sizes
            elif self.tdim is not None:
                self.refuse(f"reshapes {self.phys} to {new}; tinybnn reads only a flatten")
        elif self.cdim is not None or self.flat:
            sizes = [i for i, d in enumerate(new) if d != 1 and i > 0]
            self.cdim = sizes[0] if sizes else len(new) - 1

    def op_Flatten(self, ins, attrs):
        if attrs.get("axis", 1) != 1:
            self.refuse("a Flatten that keeps more than the batch axis")
        self.reshaped([1, int(np.prod(self.phys[1:]))])

    def op_Reshape(self, ins, attrs):
        shape = self.const(ins[1]).astype(int).tolist()
        if len(shape) < 1:
            self.refuse("a reshape to a scalar")
        shape = [self.phys[0] if d == 0 and i == 0 else d for i, d in enumerate(shape)]
        if shape.count(-1) == 1:
            known = int(np.prod([d for d in shape if d != -1]))
            shape[shape.index(-1)] = int(np.prod(self.phys)) // max(known, 1)
        self.reshaped([1] + shape[1:] if shape[0] in (1, -1) else shape)

    def op_Squeeze(self, ins, attrs):
        axes = attrs.get("axes")
        if axes is None and len(ins) > 1:
            axes = self.const(ins[1]).astype(int).tolist()
        axes = {a % len(self.phys) for a in (axes or [])} or {
            i for i, d in enumerate(self.phys) if d == 1 and i > 0
        }
        self.reshaped([d for i, d in enumerate(self.phys) if i not in axes])

    def op_Unsqueeze(self, ins, attrs):
        axes = attrs.get("axes")
        if axes is None:
            axes = self.const(ins[1]).astype(int).tolist()
        new = list(self.phys)
        for a in sorted(a % (len(self.phys) + len(axes)) for a in axes):
            new.insert(a, 1)
        self.reshaped(new)

    def dense(self, w: np.ndarray, bias) -> None:
        """w [O][F]."""
        if not self.flat and self.tdim is not None:
            self.refuse(f"a dense layer on {self.phys}; flatten or pool first")
        f = int(np.prod(self.phys[1:]))
        if w.shape[1] != f:
            self.refuse(f"{w.shape[1]} inputs for {f}")
        sign_input = bool(self.ops) and isinstance(self.ops[-1], Sign)
        self.ops.append(Dense(self.where, w, classify(w), sign_input=sign_input, bias=bias))
        self.phys, self.flat, self.cdim = [1, w.shape[0]], True, 1

    def op_Gemm(self, ins, attrs):
        if attrs.get("transA", 0):
            self.refuse("transA=1")
        w = self.const(ins[1])
        w = w if attrs.get("transB", 0) else w.T
        bias = self.const(ins[2]).reshape(-1) * attrs.get("beta", 1.0) if len(ins) > 2 else None
        self.dense(w * attrs.get("alpha", 1.0), bias)

    def op_MatMul(self, ins, attrs):
        self.dense(self.const(ins[1]).T, None)

    def op_Add(self, ins, attrs):
        last = self.ops[-1] if self.ops else None
        if not isinstance(last, Dense) or last.bias is not None:
            self.refuse("an addition that is not a dense layer's bias")
        last.bias = self.const(ins[1]).reshape(-1)

    def op_Softmax(self, ins, attrs):
        self.ops.append(Softmax(self.where))
