"""A tinybnn model as a QONNX graph: the integer program, stage by stage, in ONNX and QONNX
operators whose arithmetic is exact, so that the `qonnx` executor gives the integer
reference's scores exactly (tested, with `qonnx.core.onnx_exec.execute_onnx`).

What each stage becomes (input [1, C, T] int16 samples as float32, scores [1, K] float32):

- the first layer: Cast to double, Clip to the input range, Sub the offsets, Mul the
  multipliers; the convolution in float32 `Conv` when every partial sum stays below 2^24,
  else as windows (`Gather`) times the weights (`MatMul`) in double; the max-pool on the
  accumulator (`MaxPool`); the threshold: `Mul` by the direction (-1 where the output is +1
  below the threshold), then `MultiThreshold` (one threshold per channel, bipolar output);
- binary convolutions: `Pad` with the pad value (+1 or -1), `Conv` with `BipolarQuant`
  weights (sums of +-1 are exact in float32), then pool and threshold as above;
- int8 hidden convolutions (int8 weights on bits or on int8 codes): `Pad` with the pad value
  (+1 or -1 for bits, 0 for codes), `Conv` with the int8 weights as a float32 constant when
  every partial sum stays below 2^24 (bounded on exact integers by the weights' |w| sums
  times the largest |input|), else Cast to double and the first layer's windows times
  weights; then pool and threshold as above (bits out);
- int8 codes out (int8 or binary weights, "8a8" / "1a8"): the requantisation
  clamp(floor((acc * mult + bias) / 2^shift), lo, hi) is monotone in acc per channel, so it
  is `Mul` by the direction (-1 where mult < 0), then one `MultiThreshold` with hi - lo
  thresholds per channel (the smallest accumulator giving each code, computed on exact
  integers, `requant_thresholds`) and out_bias lo; then the max-pool of the codes
  (`MaxPool`), after the requantisation as in the reference;
- max-pool of bits: `MaxPool`; global max: `ReduceMax`; global sum: `ReduceSum` (counts of
  bits, or sums of int8 codes within 2^24); flatten: `Flatten` (PyTorch's order, c * T + t,
  as tinybnn's dense weights);
- binary dense: `MatMul` with `BipolarQuant` weights, then the threshold;
- the classifier: `MatMul` (binary or int8 weights) and `Add` of the integer bias, its
  scores bounded below 2^24 on exact integers (|input| <= 1 for bits, the pooling's bound
  for counts and sums of codes).

Every weight and threshold comes from the lowered program (`tinybnn.compiler.lowering`),
the specification, or from the layer it was lowered from where the program holds it packed.

Non-goals: a streamlined FINN dataflow graph (FINN's own transformations do that); float
scales (the graph computes the integer scores, not logits).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..compiler.contract import Requant
from ..compiler.lowering import lower
from ..errors import ModelError
from ..modelfile import atomic_write
from ..nn import Sequential
from ..ops.base import binarize_weight
from ..ops.binary_conv import BinConv, BinConvCodes
from ..ops.dense import BinDense, Classifier
from ..ops.input_conv import InputConv
from ..ops.int8_conv import Int8ActConv, Int8Conv
from ..ops.pool import GlobalSum, GlobalSumCodes, MaxPoolBits

QONNX_DOMAIN = "qonnx.custom_op.general"
FLOAT32_EXACT = 2**24  # integers below this are exact in float32
OPSET = 18  # ReduceMax takes its axes as an input from 18 on


class _Graph:
    """Nodes and constants being built; `x` is the name of the data tensor."""

    def __init__(self):
        from onnx import helper

        self.helper = helper
        self.nodes = []
        self.inits = []
        self.n = 0
        self.x = "samples"
        self._rank = 3  # of the data tensor: [1, C, T], or [1, F] once flat

    def name(self, stem: str) -> str:
        self.n += 1
        return f"{stem}_{self.n}"

    def const(self, stem: str, value: np.ndarray, dtype=np.float32) -> str:
        from onnx import numpy_helper

        name = self.name(stem)
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, *inputs: str, domain: str = "", **attrs) -> str:
        out = self.name(op_type.lower())
        self.nodes.append(
            self.helper.make_node(
                op_type, [self.x, *inputs], [out], name=out, domain=domain, **attrs
            )
        )
        self.x = out
        return out

    def bipolar(self, stem: str, w: np.ndarray) -> str:
        """+-1 weights through a BipolarQuant (scale 1), as Brevitas exports binary weights."""
        out = self.name(stem + "_bipolar")
        self.nodes.append(
            self.helper.make_node(
                "BipolarQuant",
                [self.const(stem, w), self.const("scale", np.ones(()))],
                [out],
                name=out,
                domain=QONNX_DOMAIN,
            )
        )
        return out

    def threshold(self, threshold, double: bool) -> None:
        """+1 where (neg ? acc <= th : acc >= th), else -1; then float32."""
        dtype = np.float64 if double else np.float32
        d = np.where(threshold.neg, -1.0, 1.0)
        shape = (1, -1, 1) if self._rank == 3 else (1, -1)
        self.op("Mul", self.const("direction", d.reshape(shape), dtype))
        th = (d * threshold.th.astype(np.float64))[:, None]
        self.op(
            "MultiThreshold",
            self.const("thresholds", th, dtype),
            domain=QONNX_DOMAIN,
            out_dtype="BIPOLAR",
            out_scale=2.0,
            out_bias=-1.0,
            data_layout="NCW" if self._rank == 3 else "NC",
        )
        if double:
            self.op("Cast", to=1)  # FLOAT

    def codes(self, rq: Requant, bound: int, double: bool) -> None:
        """int8 codes of accumulators |acc| <= bound: `Mul` by the direction, then a
        `MultiThreshold` of hi - lo thresholds per channel (`requant_thresholds`), offset by
        lo; then float32."""
        dtype = np.float64 if double else np.float32
        d, th = requant_thresholds(rq, bound)
        self.op("Mul", self.const("direction", np.array(d, np.float64).reshape(1, -1, 1), dtype))
        self.op(
            "MultiThreshold",
            self.const("thresholds", np.array(th, np.float64), dtype),
            domain=QONNX_DOMAIN,
            out_dtype="UINT7" if (rq.lo, rq.hi) == (0, 127) else "INT8",
            out_bias=float(rq.lo),
            data_layout="NCW",
        )
        if double:
            self.op("Cast", to=1)  # FLOAT

    def pad(self, pad: int, value: int, dtype=np.float32) -> None:
        if pad:
            pads = self.const("pads", [0, 0, pad, 0, 0, pad], np.int64)
            self.op("Pad", pads, self.const("pad_value", value, dtype), mode="constant")

    def pool(self, k: int, s: int) -> None:
        if k > 1:
            self.op("MaxPool", kernel_shape=[k], strides=[s])


def requant_thresholds(rq: Requant, bound: int) -> tuple[list[int], list[list[int]]]:
    """The requantisation of accumulators a in [-bound, bound] as thresholds: per channel
    the direction d (-1 where mult < 0, else 1) and, for each code j = lo + 1 .. hi, the
    smallest d * a whose code is >= j, so that code(a) = lo + #{thresholds <= d * a}.

    floor((a * m + b) / 2^s) >= j  <=>  a * m >= j * 2^s - b  <=>  d * a >= ceil((j * 2^s -
    b) / |m|); with m = 0 the code is constant. Exact Python integers throughout; thresholds
    are clipped to [-bound, bound + 1] (always passed / never passed), so they are exact
    wherever the accumulators are."""
    dirs, rows = [], []
    for m, b, s in zip(rq.mult.tolist(), rq.bias.tolist(), rq.shift.tolist(), strict=True):
        d = -1 if m < 0 else 1
        row = []
        for j in range(rq.lo + 1, rq.hi + 1):
            if m == 0:  # the constant code clamp(floor(b / 2^s), lo, hi)
                t = -bound if j <= min(max(b >> s, rq.lo), rq.hi) else bound + 1
            else:
                t = -((b - j * 2**s) // abs(m))  # ceil((j * 2^s - b) / |m|)
            row.append(min(max(t, -bound), bound + 1))
        dirs.append(d)
        rows.append(row)
    return dirs, rows


def _windows_matmul(g: _Graph, w: np.ndarray, stride: int, t_out: int) -> None:
    """A convolution in double of the (padded, double) data [1, C, T] with weights w
    [O][C][k]: windows [1, C, T', k] -> [1, T', C, k] -> [1, T', C * k] @ [C * k, O]."""
    o, c, k = w.shape
    idx = np.arange(t_out)[:, None] * stride + np.arange(k)[None]
    g.op("Gather", g.const("windows", idx, np.int64), axis=2)
    g.op("Transpose", perm=[0, 2, 1, 3])
    g.op("Reshape", g.const("shape", [1, t_out, c * k], np.int64))
    g.op("MatMul", g.const("weights", w.reshape(o, -1).T, np.float64))
    g.op("Transpose", perm=[0, 2, 1])


def _first_layer(g: _Graph, st: InputConv) -> None:
    w = st.weight.transpose(0, 2, 1).astype(np.float64)  # [O][k][C] -> [O][C][k]
    xmax = int(
        np.max(np.maximum(np.abs(st.lo - st.offset), np.abs(st.hi - st.offset)) * st.multiplier)
    )
    double = st.acc_bound >= FLOAT32_EXACT or xmax >= FLOAT32_EXACT
    dtype = np.float64
    g.op("Cast", to=11)  # DOUBLE
    g.op("Clip", g.const("lo", st.lo, dtype), g.const("hi", st.hi, dtype))
    g.op("Sub", g.const("offset", st.offset.reshape(1, -1, 1), dtype))
    g.op("Mul", g.const("multiplier", st.multiplier.reshape(1, -1, 1), dtype))
    g.pad(st.pad, 0, dtype)
    if double:
        _windows_matmul(g, w, st.stride, st.conv_length())
    else:
        g.op("Cast", to=1)
        weight = g.bipolar("weights", w) if st.binary else g.const("weights", w)
        g.op("Conv", weight, kernel_shape=[st.kernel_size], strides=[st.stride])
    _out(g, st, False, 0, double)


def _binary_conv(g: _Graph, st: BinConv | BinConvCodes) -> None:
    """Bits out (`BinConv`: pool, threshold) or int8 codes out (`BinConvCodes`: codes, pool);
    |acc| <= k * c_in."""
    g.pad(st.pad, st.pad_value)
    w = st.weight.transpose(0, 2, 1)  # [O][k][C] -> [O][C][k]
    g.op("Conv", g.bipolar("weights", w), kernel_shape=[st.kernel_size], strides=[st.stride])
    _out(g, st, isinstance(st, BinConvCodes), st.k_bits, False)


def _int8_conv(g: _Graph, st: Int8Conv | Int8ActConv, in_max: int) -> None:
    """int8 weights on bits (|x| = 1, pad +-1) or on int8 codes (|x| <= in_max, pad 0):
    float32 `Conv` when every partial sum stays below 2^24, else in double; then bits out
    (pool, threshold) or codes out (codes, pool)."""
    w = st.weight.transpose(0, 2, 1).astype(np.int64)  # [O][k][C] -> [O][C][k]
    # |any partial sum| <= sum |w| * max |x|: exact Python integers
    bound = max(sum(row) for row in np.abs(w).reshape(len(w), -1).tolist()) * in_max
    double = bound >= FLOAT32_EXACT
    if double:
        g.op("Cast", to=11)  # DOUBLE
        g.pad(st.pad, st.pad_value, np.float64)
        _windows_matmul(g, w.astype(np.float64), st.stride, st.conv_length())
    else:
        g.pad(st.pad, st.pad_value)
        weights = g.const("weights", w)
        g.op("Conv", weights, kernel_shape=[st.kernel_size], strides=[st.stride])
    _out(g, st, st.out_kind == "i8", bound, double)


def _out(g: _Graph, st, codes: bool, bound: int, double: bool) -> None:
    """A convolution stage's output: int8 codes of accumulators |acc| <= bound, then their
    max-pool (as the reference orders them); or the max-pool of the accumulators, then the
    threshold to bits (thresholds past +-2^24 round in float32 to values past every
    accumulator: exact)."""
    if codes:
        g.codes(st.requant, bound, double)
        g.pool(st.pool_k, st.pool_s)
    else:
        g.pool(st.pool_k, st.pool_s)
        g.threshold(st.threshold, double)


def _flat(g: _Graph) -> None:
    if g._rank == 3:
        g.op("Flatten", axis=1)
        g._rank = 2


def export(model: Sequential, path: str | os.PathLike) -> None:
    """Write `model` as a QONNX graph to `path` (atomically); a `ModelError` for a model
    whose integers float32 or the executor could not hold exactly."""
    import onnx
    from onnx import TensorProto, helper

    program = lower(model)
    g = _Graph()
    for prev, st in zip([None, *program.stages[:-1]], program.stages, strict=True):
        where = f"layer {st.layers[0]} ({model.layers[st.layers[0]].kind})"
        if isinstance(st, InputConv):
            _first_layer(g, st)
        elif isinstance(st, (BinConv, BinConvCodes)):
            if st.k_bits >= FLOAT32_EXACT:
                raise ModelError(f"{where}: sums of {st.k_bits} bits are not exact in float32")
            _binary_conv(g, st)
        elif isinstance(st, (Int8Conv, Int8ActConv)):
            in_max = 1 if st.in_kind == "bin" else max(-prev.requant.lo, prev.requant.hi)
            _int8_conv(g, st, in_max)
        elif isinstance(st, MaxPoolBits):
            if len(st.out_shape) == 1:
                g.op("ReduceMax", g.const("axes", [2], np.int64), keepdims=0)
                g._rank = 2
            else:
                g.op("MaxPool", kernel_shape=[st.kernel_size], strides=[st.stride])
        elif isinstance(st, (GlobalSum, GlobalSumCodes)):
            if st.bound >= FLOAT32_EXACT:
                raise ModelError(f"{where}: sums up to {st.bound} are not exact in float32")
            g.op("ReduceSum", g.const("axes", [2], np.int64), keepdims=0)
            g._rank = 2
        elif isinstance(st, BinDense):
            _flat(g)
            layer = model.layers[st.layers[0]]
            with torch.no_grad():
                w = binarize_weight(layer.weight).double().numpy()
            g.op("MatMul", g.bipolar("weights", w.T))
            g.threshold(st.threshold, False)
        elif isinstance(st, Classifier):
            _flat(g)
            layer = model.layers[st.layers[0]]
            with torch.no_grad():
                w = (
                    (binarize_weight(layer.weight) if st.binary_weights else layer.integer_weight())
                    .double()
                    .numpy()
                )
            # |bit| = 1; |count| <= T, |sum of codes| <= T * 127 (the global pool's bound)
            in_max = 1 if st.binary_input else prev.bound
            bound = max(  # exact Python integers
                s * in_max + abs(b)
                for s, b in zip(
                    np.abs(w).astype(np.int64).sum(1).tolist(), st.bias.tolist(), strict=True
                )
            )
            if bound >= FLOAT32_EXACT:
                raise ModelError(f"{where}: class scores up to {bound} are not exact in float32")
            weights = g.bipolar("weights", w.T) if st.binary_weights else g.const("weights", w.T)
            g.op("MatMul", weights)
            g.op("Add", g.const("bias", st.bias.astype(np.float64)))
        else:
            raise ModelError(f"{where}: stage {type(st).__name__} has no QONNX form")
    c, t = model.input_shape
    graph = helper.make_graph(
        g.nodes,
        "tinybnn",
        [helper.make_tensor_value_info("samples", TensorProto.FLOAT, [1, c, t])],
        [helper.make_tensor_value_info(g.x, TensorProto.FLOAT, [1, model.num_classes])],
        g.inits,
    )
    onnx_model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(QONNX_DOMAIN, 1)],
        producer_name="tinybnn",
        producer_version=__version__,
        doc_string="input: int16 samples [1, C, T] as float; output: tinybnn's integer scores; "
        "classes: " + ", ".join(model.class_names),
    )
    onnx.checker.check_model(onnx_model)
    atomic_write(Path(path), lambda f: f.write(onnx_model.SerializeToString()))
