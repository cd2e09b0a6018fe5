"""Read a larq model from a Keras file (`.h5`, or `.keras`: a zip of config.json and
model.weights.h5) into the importers' `Graph`, with `h5py` and `json` only.

Nothing in the file is executed: the architecture is JSON, read as data, and every layer is
matched against the table below by its class name; TensorFlow is never imported. The layers
a 1-D larq BNN uses are read (`QuantConv1D`, `QuantDense`, `Conv1D`, `Dense`,
`BatchNormalization`, `MaxPooling1D`, `GlobalAveragePooling1D`, `GlobalMaxPooling1D`,
`Flatten`, larq's sign quantizers as layers or activations, `Activation('softmax')` at the
end; `Dropout` and `InputLayer` do nothing at inference); anything else is refused with one
line naming the layer and what tinybnn lacks.

Keras stores [T, C] windows (channels last) and flattens them as t * C + c; the graph is in
PyTorch's layout, so kernels are transposed and a dense layer after a flatten has its rows
reordered to c * T + t.

Non-goals: Keras 3 files (larq builds on `tf.keras`, which is Keras 2), functional models
with branches, custom layers.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
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
    quantize_kernel,
)

# larq's quantizers by name (as a string or a serialised class): which weights they give,
# and whether they are a sign as an activation.
SIGNS = {"ste_sign", "approx_sign", "swish_sign"}
KERNEL_QUANTIZERS = {"ste_sign": BINARY, "approx_sign": BINARY, "swish_sign": BINARY}
KERNEL_QUANTIZERS["magnitude_aware_sign"] = SCALED
SIGN_CLASSES = {"SteSign": "ste_sign", "ApproxSign": "approx_sign", "SwishSign": "swish_sign"}
CLASS_QUANTIZERS = dict(SIGN_CLASSES, MagnitudeAwareSign="magnitude_aware_sign")
MAX_MEMBER_BYTES = 64 << 20  # a .keras member larger than this is not a small BNN


def snake_case(name: str) -> str:
    """Keras's `to_snake_case`: the key of a layer's weights in a .keras file."""
    name = re.sub("(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def read(path: Path) -> Graph:
    """The graph of the larq model in `path`; a one-line `TinyBNNError` otherwise."""
    import h5py

    try:
        if path.suffix == ".keras":
            with zipfile.ZipFile(path) as z:
                names = set(z.namelist())
                for member in ("config.json", "model.weights.h5"):
                    if member not in names:
                        raise TinyBNNError(f"not a Keras model file: it has no {member}")
                    if z.getinfo(member).file_size > MAX_MEMBER_BYTES:
                        raise TinyBNNError(f"its {member} is larger than a small BNN's")
                config = json.loads(z.read("config.json"))
                meta = json.loads(z.read("metadata.json")) if "metadata.json" in names else {}
                weights_file = h5py.File(io.BytesIO(z.read("model.weights.h5")), "r")
            version = str(meta.get("keras_version", ""))
            reader = _KerasV3Weights(weights_file)
        else:
            weights_file = h5py.File(path, "r")
            if "model_config" not in weights_file.attrs:
                raise TinyBNNError("not a Keras model file: it has no model_config (weights only?)")
            raw = weights_file.attrs["model_config"]
            config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
            version = str(weights_file.attrs.get("keras_version", ""))
            if isinstance(version, bytes):
                version = version.decode()
            reader = _H5Weights(weights_file)
    except (OSError, zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError, KeyError) as e:
        raise TinyBNNError(f"not a readable Keras model file ({type(e).__name__}: {e})") from None
    if version.startswith("3"):
        raise TinyBNNError(
            f"a Keras {version} file; tinybnn reads larq models saved by tf.keras (Keras 2)"
        )
    with weights_file:
        return _Reader(config, reader).graph()


class _H5Weights:
    """Weights of a legacy .h5 file: model_weights/<layer name>/ with their names."""

    def __init__(self, f):
        self.group = f["model_weights"] if "model_weights" in f else f

    def get(self, layer: dict, index: int, names: list[str]) -> dict[str, np.ndarray]:
        name = layer["config"]["name"]
        if name not in self.group:
            return {}
        g = self.group[name]
        out = {}
        for full in g.attrs.get("weight_names", []):
            full = full.decode() if isinstance(full, bytes) else str(full)
            key = full.rsplit("/", 1)[-1].split(":")[0]
            out[key] = np.asarray(g[full], dtype=np.float64)
        return out


class _KerasV3Weights:
    """Weights of a .keras file: layers/<snake_case class name>[_n]/vars/<i>, in the order
    of the layer's weights; `names` gives that order."""

    def __init__(self, f):
        self.group = f["layers"] if "layers" in f else None
        self.used: dict[str, int] = {}
        self.keys: dict[int, str] = {}

    def key(self, layer: dict, index: int) -> str:
        if index not in self.keys:
            name = snake_case(layer["class_name"])
            n = self.used.get(name)
            self.used[name] = 0 if n is None else n + 1
            self.keys[index] = name if n is None else f"{name}_{n + 1}"
        return self.keys[index]

    def get(self, layer: dict, index: int, names: list[str]) -> dict[str, np.ndarray]:
        key = self.key(layer, index)
        if self.group is None or key not in self.group or "vars" not in self.group[key]:
            return {}
        v = self.group[key]["vars"]
        if len(v) != len(names):
            raise TinyBNNError(f"{len(v)} weight arrays where {len(names)} were expected")
        return {n: np.asarray(v[str(i)], dtype=np.float64) for i, n in enumerate(names)}


def _name(q) -> str | None:
    """A quantizer's or activation's name, from a string or a serialised object."""
    if q is None:
        return None
    if isinstance(q, str):
        return q
    if isinstance(q, dict):
        cls = q.get("class_name")
        return CLASS_QUANTIZERS.get(cls, cls)
    return str(q)


class _Reader:
    def __init__(self, config: dict, weights):
        self.config = config
        self.weights = weights
        self.ops: list[Op] = []
        self.shape: tuple[int, ...] = ()  # [T, C] or [F], Keras's layout
        self.flattened_from: tuple[int, int] | None = None  # [T, C] before a flatten
        self.where = ""

    def refuse(self, why: str):
        raise ModelError(f"{self.where}: {why}")

    def layers(self) -> list[dict]:
        if not isinstance(self.config, dict):
            raise TinyBNNError("the model config is not a JSON object")
        kind = self.config.get("class_name")
        body = self.config.get("config", {})
        layers = body.get("layers") if isinstance(body, dict) else None
        if not isinstance(layers, list) or not all(isinstance(x, dict) for x in layers):
            raise TinyBNNError(f"a {kind} model without a list of layers")
        if kind == "Functional":
            self.check_chain(layers)
        elif kind != "Sequential":
            raise ModelError(f"a {kind} model; tinybnn reads Sequential models (or a chain)")
        return layers

    def check_chain(self, layers: list[dict]) -> None:
        """A functional model is read only when each layer takes the one before it."""
        for prev, layer in zip(layers, layers[1:], strict=False):
            nodes = layer.get("inbound_nodes") or []
            ok = len(nodes) == 1 and len(nodes[0]) == 1 and nodes[0][0][0] == prev.get("name")
            if not ok:
                raise ModelError(
                    f"layer '{layer.get('name')}': not a chain of layers; tinybnn reads "
                    "models whose layers each take the one before"
                )

    def graph(self) -> Graph:
        layers = self.layers()
        input_shape = None
        number = 0  # as Keras numbers model.layers: without the InputLayer
        for index, layer in enumerate(layers):
            cls = layer.get("class_name")
            cfg = layer.get("config")
            if not isinstance(cfg, dict) or not isinstance(cls, str):
                raise TinyBNNError(f"layer {index}: not a layer config")
            self.where = f"layer {number} ({cls} '{cfg.get('name')}')"
            number += cls != "InputLayer"
            if input_shape is None:
                shape = cfg.get("batch_input_shape") or cfg.get("batch_shape")
                if not (isinstance(shape, list) and len(shape) == 3):
                    self.refuse("needs an input of shape [batch, steps, channels]")
                if not all(isinstance(d, int) and d > 0 for d in shape[1:]):
                    self.refuse(f"input shape {shape[1:]}: tinybnn needs a fixed length")
                input_shape = (shape[2], shape[1])
                self.shape = (shape[1], shape[2])
            handler = getattr(self, "layer_" + cls, None)
            if handler is None:
                self.refuse(
                    "tinybnn has no such layer (it reads QuantConv1D, QuantDense, Conv1D, Dense, "
                    "BatchNormalization, MaxPooling1D, GlobalAveragePooling1D, "
                    "GlobalMaxPooling1D, Flatten, larq sign quantizers and a final softmax)"
                )
            handler(layer, index, cfg)
        for i, op in enumerate(self.ops):  # a softmax anywhere but last is refused later
            if isinstance(op, Softmax) and i != len(self.ops) - 1:
                raise ModelError(f"{op.name}: a softmax before the end")
        return Graph("larq", input_shape, self.ops)

    # -- helpers

    def op_name(self) -> str:
        return self.where

    def expect(self, cfg: dict, key: str, allowed, what: str) -> None:
        value = cfg.get(key, allowed[0])
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if value not in allowed:
            self.refuse(f"{key}={value!r}; tinybnn supports {what}")

    def one(self, cfg: dict, key: str) -> int:
        v = cfg.get(key)
        v = v[0] if isinstance(v, list) and len(v) == 1 else v
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            self.refuse(f"{key}={v!r} is not a positive integer")
        return v

    def kernel_quant(self, cfg: dict) -> str:
        q = _name(cfg.get("kernel_quantizer"))
        if q is None:
            return FLOAT
        if q not in KERNEL_QUANTIZERS:
            self.refuse(
                f"kernel_quantizer {q}; tinybnn reads {', '.join(sorted(KERNEL_QUANTIZERS))}"
            )
        return KERNEL_QUANTIZERS[q]

    def input_sign(self, cfg: dict) -> bool:
        q = _name(cfg.get("input_quantizer"))
        if q is None:
            return False
        if q not in SIGNS:
            self.refuse(
                f"input_quantizer {q}; tinybnn's activations are signs ({', '.join(sorted(SIGNS))})"
            )
        return True

    def linear(self, cfg: dict) -> None:
        act = _name(cfg.get("activation", "linear"))
        if act not in (None, "linear"):
            self.refuse(f"activation {act!r} inside the layer; tinybnn reads linear layers")

    def tensor(self, w: dict, key: str, shape: tuple[int, ...]) -> np.ndarray:
        if key not in w:
            self.refuse(f"its {key} weights are missing from the file")
        a = w[key]
        if a.shape != shape:
            self.refuse(f"its {key} has shape {list(a.shape)}, not {list(shape)}")
        if not np.isfinite(a).all():
            self.refuse(f"its {key} holds NaN or infinity")
        return a

    # -- one method per Keras class

    def layer_InputLayer(self, layer, index, cfg):
        pass

    def layer_Dropout(self, layer, index, cfg):
        pass

    def layer_QuantConv1D(self, layer, index, cfg):
        self.expect(cfg, "data_format", ["channels_last"], "channels_last")
        self.expect(cfg, "dilation_rate", [1], "dilation_rate 1")
        self.expect(cfg, "groups", [1], "groups=1")
        self.expect(cfg, "padding", ["valid", "same"], "'valid' or 'same'")
        self.linear(cfg)
        if len(self.shape) != 2:
            self.refuse(f"takes a [steps, channels] input, not {list(self.shape)}")
        t, c = self.shape
        o, k, s = self.one(cfg, "filters"), self.one(cfg, "kernel_size"), self.one(cfg, "strides")
        names = ["kernel", "bias"] if cfg.get("use_bias", True) else ["kernel"]
        w = self.weights.get(layer, index, names)
        kernel = self.tensor(w, "kernel", (k, c, o)).transpose(2, 1, 0)  # -> [O][C][k]
        bias = self.tensor(w, "bias", (o,)) if "bias" in names else None
        pad = 0
        if cfg.get("padding") == "same":
            t_out = -(-t // s)
            total = max((t_out - 1) * s + k - t, 0)
            if total % 2:
                self.refuse(
                    f"padding='same' with kernel_size {k} and strides {s} pads unevenly; tinybnn "
                    "pads both sides alike (use an odd kernel_size at stride 1)"
                )
            pad = total // 2
        pad_value = cfg.get("pad_values", 0.0)
        if not isinstance(pad_value, (int, float)) or isinstance(pad_value, bool):
            self.refuse(f"pad_values={pad_value!r} is not a number")
        quant = self.kernel_quant(cfg)
        self.ops.append(
            Conv(
                self.where,
                quantize_kernel(kernel, quant),
                quant,
                stride=s,
                pad=pad,
                pad_value=float(pad_value),
                sign_input=self.input_sign(cfg),
                bias=bias,
            )
        )
        self.shape = ((t + 2 * pad - k) // s + 1, o)

    def layer_Conv1D(self, layer, index, cfg):
        self.layer_QuantConv1D(layer, index, cfg)

    def layer_QuantDense(self, layer, index, cfg):
        self.linear(cfg)
        if len(self.shape) != 1:
            self.refuse(f"takes a flat input, not {list(self.shape)}; add a Flatten or a pooling")
        (f,) = self.shape
        o = self.one(cfg, "units")
        names = ["kernel", "bias"] if cfg.get("use_bias", True) else ["kernel"]
        w = self.weights.get(layer, index, names)
        kernel = self.tensor(w, "kernel", (f, o))
        if self.flattened_from is not None:  # Keras's t * C + c -> PyTorch's c * T + t
            t, c = self.flattened_from
            kernel = kernel.reshape(t, c, o).transpose(1, 0, 2).reshape(f, o)
        quant = self.kernel_quant(cfg)
        self.ops.append(
            Dense(
                self.where,
                quantize_kernel(kernel.T.copy(), quant),
                quant,
                sign_input=self.input_sign(cfg),
                bias=self.tensor(w, "bias", (o,)) if "bias" in names else None,
            )
        )
        self.shape, self.flattened_from = (o,), None

    def layer_Dense(self, layer, index, cfg):
        self.layer_QuantDense(layer, index, cfg)

    def layer_BatchNormalization(self, layer, index, cfg):
        axis = cfg.get("axis", -1)
        axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
        if axis not in (-1, len(self.shape)):
            self.refuse(f"axis={axis}; tinybnn normalises the channels (the last axis)")
        n = self.shape[-1]
        scale, center = cfg.get("scale", True), cfg.get("center", True)
        names = (["gamma"] if scale else []) + (["beta"] if center else [])
        w = self.weights.get(layer, index, names + ["moving_mean", "moving_variance"])
        eps = cfg.get("epsilon", 1e-3)
        if not isinstance(eps, (int, float)) or isinstance(eps, bool):
            self.refuse(f"epsilon={eps!r} is not a number")
        var = self.tensor(w, "moving_variance", (n,))
        if (var < 0).any():
            self.refuse("a negative moving_variance")
        self.ops.append(
            BatchNorm(
                self.where,
                mean=self.tensor(w, "moving_mean", (n,)),
                var=var,
                gamma=self.tensor(w, "gamma", (n,)) if scale else np.ones(n),
                beta=self.tensor(w, "beta", (n,)) if center else np.zeros(n),
                eps=float(eps),
            )
        )

    def layer_MaxPooling1D(self, layer, index, cfg):
        self.expect(cfg, "data_format", ["channels_last"], "channels_last")
        self.expect(cfg, "padding", ["valid"], "padding='valid'")
        if len(self.shape) != 2:
            self.refuse(f"takes a [steps, channels] input, not {list(self.shape)}")
        k = self.one(cfg, "pool_size")
        s = k if cfg.get("strides") is None else self.one(cfg, "strides")
        t, c = self.shape
        if t < k:
            self.refuse(f"pool_size {k} is longer than its input ({t} steps)")
        self.ops.append(MaxPool(self.where, k, s))
        self.shape = ((t - k) // s + 1, c)

    layer_MaxPool1D = layer_MaxPooling1D

    def _global(self, cfg, mode):
        self.expect(cfg, "data_format", ["channels_last"], "channels_last")
        if cfg.get("keepdims", False):
            self.refuse("keepdims=True; tinybnn pools to a flat vector")
        if len(self.shape) != 2:
            self.refuse(f"takes a [steps, channels] input, not {list(self.shape)}")
        self.ops.append(GlobalPool(self.where, mode))
        self.shape = (self.shape[1],)

    def layer_GlobalAveragePooling1D(self, layer, index, cfg):
        self._global(cfg, "mean")

    def layer_GlobalMaxPooling1D(self, layer, index, cfg):
        self._global(cfg, "max")

    layer_GlobalMaxPool1D = layer_GlobalMaxPooling1D
    layer_GlobalAvgPool1D = layer_GlobalAveragePooling1D

    def layer_Flatten(self, layer, index, cfg):
        self.expect(cfg, "data_format", ["channels_last"], "channels_last")
        if len(self.shape) == 2:
            self.flattened_from = self.shape
            self.shape = (self.shape[0] * self.shape[1],)
            self.ops.append(FlattenOp(self.where))

    def layer_Activation(self, layer, index, cfg):
        act = _name(cfg.get("activation"))
        if act in SIGNS:
            self.ops.append(Sign(self.where))
        elif act == "softmax":
            self.ops.append(Softmax(self.where))
        elif act != "linear":
            self.refuse(f"activation {act!r}; tinybnn reads a sign, or a softmax at the end")

    def _sign_layer(self, layer, index, cfg):
        self.ops.append(Sign(self.where))

    layer_SteSign = layer_ApproxSign = layer_SwishSign = _sign_layer
