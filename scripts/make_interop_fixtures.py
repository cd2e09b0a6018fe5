"""Build the larq and Brevitas fixtures of `tests/test_interop_*.py` (issue 17).

Small 1-D binarized models, trained a few steps on seeded data by the frameworks themselves,
saved as the files users would bring (`.h5`, `.keras`, QONNX `.onnx`), each with the
framework's own outputs on seeded inputs beside it (`<name>.npz`: `X` int16 windows in the
framework's layout, `y` labels, `logits` before the softmax, `probs` after it).

The tests read these files without the frameworks; rerun this script when a format changes,
in a throwaway venv outside the repository (the frameworks are heavy and are not
dependencies of tinybnn):

    python3 -m venv /tmp/fixvenv && /tmp/fixvenv/bin/pip install \\
        tensorflow-cpu==2.15.1 larq==0.14.0 numpy==1.26.4 h5py==3.16.0
    /tmp/fixvenv/bin/python scripts/make_interop_fixtures.py larq

    python3 -m venv /tmp/brevvenv && /tmp/brevvenv/bin/pip install torch==2.13.0 && \\
        /tmp/brevvenv/bin/pip install brevitas==0.13.4 onnx==1.17.0 onnxoptimizer==0.4.2 \\
        onnxscript==0.7.2 qonnx==1.0.0
    /tmp/brevvenv/bin/python scripts/make_interop_fixtures.py brevitas

Versions (checked below; other versions may save other formats): larq 0.14.0 on
TensorFlow 2.15.1 (Keras 2.15: larq uses `tf.keras`, which is Keras 3 from TensorFlow 2.16
on, and larq 0.14.0 needs numpy < 2), Brevitas 0.13.4 on torch 2.13.0 with qonnx 1.0.0.

Non-goal: accuracy. The models train for a few steps so that their weights, thresholds and
batch statistics are not the initial ones; the tests check that tinybnn computes what the
framework computes, not that the model is good.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "interop"
VERSIONS = {  # distribution -> version, per part
    "larq": {"larq": "0.14.0", "tensorflow-cpu": "2.15.1"},
    "brevitas": {"brevitas": "0.13.4", "torch": "2.13.0", "qonnx": "1.0.0", "onnx": "1.17.0"},
}
N_TEST = 48


def seeded_data(seed: int, n: int, channels: int, length: int, classes: int):
    """Windows [N, T, C] of integer samples: class k is a sine of k + 1 periods on channel
    k % C, plus noise; returned as int16 and labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    t = np.arange(length) / length
    x = rng.normal(0, 300, (n, length, channels))
    for i, k in enumerate(y):
        phase = rng.uniform(0, 2 * np.pi)
        x[i, :, k % channels] += 1500 * np.sin(2 * np.pi * (k + 1) * t + phase)
    return np.clip(np.round(x), -32768, 32767).astype(np.int16), y


def check_versions(part: str) -> None:
    from importlib.metadata import version

    for name, want in VERSIONS[part].items():
        have = version(name).split("+")[0]
        if have != want:
            raise SystemExit(f"{name} {have} is installed; these fixtures are made with {want}")


# ---------------------------------------------------------------------------------------
# larq


def larq_models(tf, lq):
    """name -> (file suffix, input (T, C), classes, builder)."""
    layers = tf.keras.layers
    ste = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign", use_bias=False)

    def exact():
        # every layer integer-exact: binary first layer on raw samples, binary head
        return tf.keras.Sequential(
            [
                layers.Input((33, 3)),
                lq.layers.QuantConv1D(
                    31, 3, padding="same", kernel_quantizer="ste_sign", use_bias=False
                ),
                layers.BatchNormalization(),
                lq.layers.QuantConv1D(32, 3, padding="same", pad_values=1.0, **ste),
                layers.BatchNormalization(),
                layers.MaxPool1D(2),
                lq.layers.QuantConv1D(
                    65,
                    3,
                    input_quantizer="approx_sign",
                    kernel_quantizer="swish_sign",
                    use_bias=False,
                ),
                layers.BatchNormalization(),
                layers.MaxPool1D(3),
                layers.Flatten(),
                lq.layers.QuantDense(5, **ste),
                layers.Activation("softmax"),
            ]
        )

    def gap_float_head():
        # magnitude-aware kernels (XNOR-Net scaling), a pool before the BatchNorm, a sign
        # layer, global average pooling and a float head
        return tf.keras.Sequential(
            [
                layers.Input((40, 2)),
                lq.layers.QuantConv1D(
                    33, 5, kernel_quantizer="magnitude_aware_sign", use_bias=False
                ),
                layers.MaxPool1D(2),
                layers.BatchNormalization(),
                lq.layers.QuantConv1D(
                    64,
                    3,
                    padding="same",
                    pad_values=1.0,
                    input_quantizer="ste_sign",
                    kernel_quantizer="magnitude_aware_sign",
                    use_bias=False,
                ),
                layers.BatchNormalization(),
                lq.quantizers.SteSign(),
                layers.GlobalAveragePooling1D(),
                layers.Dense(4),
                layers.Activation("softmax"),
            ]
        )

    def gmp_binary_head():
        return tf.keras.Sequential(
            [
                layers.Input((31, 4)),
                lq.layers.QuantConv1D(64, 3, kernel_quantizer="ste_sign", use_bias=False),
                layers.BatchNormalization(),
                lq.layers.QuantConv1D(
                    33,
                    3,
                    padding="same",
                    pad_values=1.0,
                    input_quantizer="swish_sign",
                    kernel_quantizer="approx_sign",
                    use_bias=False,
                ),
                layers.BatchNormalization(),
                lq.quantizers.SwishSign(),
                layers.GlobalMaxPool1D(),
                lq.layers.QuantDense(3, **ste),
                layers.Activation("softmax"),
            ]
        )

    def float_first():
        # a float first layer (int8 in tinybnn), hidden binary dense, a BatchNorm on the head
        return tf.keras.Sequential(
            [
                layers.Input((32, 3)),
                lq.layers.QuantConv1D(16, 5, use_bias=False),
                layers.BatchNormalization(),
                lq.layers.QuantConv1D(32, 3, **ste),
                layers.BatchNormalization(),
                layers.MaxPool1D(4),
                layers.Flatten(),
                lq.layers.QuantDense(16, **ste),
                layers.BatchNormalization(),
                lq.layers.QuantDense(3, **ste),
                layers.BatchNormalization(scale=False),
                layers.Activation("softmax"),
            ]
        )

    def docs_example():
        # larq's documented example (QuantConv2D on MNIST) written in 1-D
        kwargs = dict(
            input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip"
        )
        return tf.keras.Sequential(
            [
                layers.Input((64, 3)),
                lq.layers.QuantConv1D(
                    32,
                    3,
                    kernel_quantizer="ste_sign",
                    kernel_constraint="weight_clip",
                    use_bias=False,
                ),
                layers.MaxPool1D(2),
                layers.BatchNormalization(scale=False),
                lq.layers.QuantConv1D(64, 3, use_bias=False, **kwargs),
                layers.MaxPool1D(2),
                layers.BatchNormalization(scale=False),
                lq.layers.QuantConv1D(64, 3, use_bias=False, **kwargs),
                layers.BatchNormalization(scale=False),
                layers.MaxPool1D(4),
                layers.Flatten(),
                lq.layers.QuantDense(64, use_bias=False, **kwargs),
                layers.BatchNormalization(scale=False),
                lq.layers.QuantDense(4, use_bias=False, **kwargs),
                layers.BatchNormalization(scale=False),
                layers.Activation("softmax"),
            ]
        )

    def refuse_float_conv():
        # a float convolution between binary layers: tinybnn refuses it
        return tf.keras.Sequential(
            [
                layers.Input((16, 2)),
                lq.layers.QuantConv1D(8, 3, kernel_quantizer="ste_sign", use_bias=False),
                layers.BatchNormalization(),
                layers.Conv1D(8, 3),
                layers.Flatten(),
                layers.Dense(2),
            ]
        )

    def refuse_zero_pad():
        # zero padding of binary activations: tinybnn pads them with +1 or -1 only
        return tf.keras.Sequential(
            [
                layers.Input((16, 2)),
                lq.layers.QuantConv1D(8, 3, kernel_quantizer="ste_sign", use_bias=False),
                layers.BatchNormalization(),
                lq.layers.QuantConv1D(8, 3, padding="same", **ste),
                layers.BatchNormalization(),
                layers.Flatten(),
                lq.layers.QuantDense(2, **ste),
            ]
        )

    return {
        "larq_exact": (".h5", exact, 5),
        "larq_gap_float_head": (".keras", gap_float_head, 4),
        "larq_gmp": (".h5", gmp_binary_head, 3),
        "larq_float_first": (".h5", float_first, 3),
        "larq_docs": (".keras", docs_example, 4),
        "larq_refuse_float_conv": (".h5", refuse_float_conv, 2),
        "larq_refuse_zero_pad": (".keras", refuse_zero_pad, 2),
    }


def make_larq() -> None:
    import larq as lq
    import tensorflow as tf

    check_versions("larq")
    for seed, (name, (suffix, build, classes)) in enumerate(larq_models(tf, lq).items()):
        tf.keras.utils.set_random_seed(seed)
        model = build()
        _, length, channels = model.input_shape
        refused = "refuse" in name
        if not refused:
            x, y = seeded_data(seed, 256, channels, length, classes)
            model.compile(
                optimizer=tf.keras.optimizers.Adam(0.01),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
            )
            model.fit(x.astype(np.float32), y, epochs=4, batch_size=32, verbose=0)
        # an uncompiled copy, so that no optimizer state is saved
        clean = tf.keras.models.clone_model(model)
        clean.set_weights(model.get_weights())
        path = OUT / f"{name}{suffix}"
        path.unlink(missing_ok=True)
        clean.save(path) if suffix == ".keras" else clean.save(path, include_optimizer=False)
        if refused:
            print(f"wrote {path} ({path.stat().st_size} B)")
            continue
        x, y = seeded_data(1000 + seed, N_TEST, channels, length, classes)
        logits = tf.keras.Model(clean.input, clean.layers[-2].output)
        outputs = dict(
            X=x,
            y=y,
            logits=logits(x.astype(np.float32), training=False).numpy(),
            probs=clean(x.astype(np.float32), training=False).numpy(),
        )
        np.savez_compressed(OUT / f"{name}.npz", **outputs)
        acc = (outputs["probs"].argmax(1) == y).mean()
        print(f"wrote {path} ({path.stat().st_size} B), test accuracy {100 * acc:.0f}%")


# ---------------------------------------------------------------------------------------
# Brevitas


def brevitas_models(torch, qnn, quant):
    """name -> (input (C, T), classes, builder). Binary layers pad nothing: PyTorch pads with
    zeros, and tinybnn pads binary activations with +1 or -1."""
    nn = torch.nn
    wq = dict(weight_quant=quant.SignedBinaryWeightPerTensorConst, bias=False)

    def sign():
        return qnn.QuantIdentity(act_quant=quant.SignedBinaryActPerTensorConst)

    def exact():
        return nn.Sequential(
            qnn.QuantConv1d(3, 33, 3, padding=1, **wq),  # raw samples in, zero padding
            nn.BatchNorm1d(33),
            sign(),
            qnn.QuantConv1d(33, 32, 3, **wq),
            nn.BatchNorm1d(32),
            nn.MaxPool1d(2),
            sign(),
            qnn.QuantConv1d(32, 65, 3, **wq),
            nn.BatchNorm1d(65),
            sign(),
            nn.MaxPool1d(3),
            nn.Flatten(),
            qnn.QuantLinear(65 * 4, 5, **wq),
        )

    def gap_float_head():
        return nn.Sequential(
            qnn.QuantConv1d(2, 31, 5, **wq),
            nn.MaxPool1d(2),
            nn.BatchNorm1d(31),
            sign(),
            qnn.QuantConv1d(31, 64, 3, **wq),
            nn.BatchNorm1d(64),
            sign(),
            nn.AdaptiveAvgPool1d(1),
            nn.Flatten(),
            nn.Linear(64, 4),
        )

    def dense_hidden():
        return nn.Sequential(
            qnn.QuantConv1d(4, 32, 3, **wq),
            nn.BatchNorm1d(32),
            sign(),
            nn.MaxPool1d(4),
            nn.Flatten(),
            qnn.QuantLinear(32 * 7, 33, **wq),
            nn.BatchNorm1d(33),
            sign(),
            qnn.QuantLinear(33, 3, **wq),
        )

    def refuse_zero_pad():
        return nn.Sequential(
            qnn.QuantConv1d(2, 8, 3, **wq),
            nn.BatchNorm1d(8),
            sign(),
            qnn.QuantConv1d(8, 8, 3, padding=1, **wq),
            nn.BatchNorm1d(8),
            sign(),
            nn.Flatten(),
            qnn.QuantLinear(8 * 14, 2, **wq),
        )

    return {
        "brevitas_exact": ((3, 33), 5, exact),
        "brevitas_gap_float_head": ((2, 40), 4, gap_float_head),
        "brevitas_dense": ((4, 31), 3, dense_hidden),
        "brevitas_refuse_zero_pad": ((2, 16), 2, refuse_zero_pad),
    }


def make_brevitas() -> None:
    import brevitas.nn as qnn
    import brevitas.quant as quant
    import torch
    from brevitas.export import export_qonnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    check_versions("brevitas")
    torch.set_num_threads(1)
    for seed, (name, ((channels, length), classes, build)) in enumerate(
        brevitas_models(torch, qnn, quant).items()
    ):
        torch.manual_seed(seed)
        model = build()
        refused = "refuse" in name
        if not refused:
            x, y = seeded_data(seed, 256, channels, length, classes)
            xt = torch.tensor(x.transpose(0, 2, 1), dtype=torch.float32)
            yt = torch.tensor(y)
            opt = torch.optim.Adam(model.parameters(), 0.01)
            model.train()
            for _ in range(4):
                for i in range(0, len(x), 32):
                    opt.zero_grad()
                    loss = torch.nn.functional.cross_entropy(model(xt[i : i + 32]), yt[i : i + 32])
                    loss.backward()
                    opt.step()
        model.eval()
        path = OUT / f"{name}.onnx"
        export_qonnx(model, torch.zeros(1, channels, length), str(path))
        embed_weights(path)
        if refused:
            print(f"wrote {path} ({path.stat().st_size} B)")
            continue
        x, y = seeded_data(1000 + seed, N_TEST, channels, length, classes)
        xc = x.transpose(0, 2, 1).astype(np.float32)  # [N, C, T]: PyTorch's layout
        with torch.no_grad():
            logits = model(torch.tensor(xc)).numpy()
        # the QONNX executor's outputs: what the exported graph computes
        wrapper = ModelWrapper(str(path))
        iname, oname = wrapper.graph.input[0].name, wrapper.graph.output[0].name
        executed = np.concatenate(
            [execute_onnx(wrapper, {iname: xc[i : i + 1]})[oname] for i in range(len(xc))]
        )
        probs = torch.softmax(torch.tensor(logits), 1).numpy()
        np.savez_compressed(
            OUT / f"{name}.npz", X=x, y=y, logits=logits, probs=probs, qonnx_logits=executed
        )
        acc = (logits.argmax(1) == y).mean()
        print(
            f"wrote {path} ({path.stat().st_size} B), test accuracy {100 * acc:.0f}%, "
            f"|brevitas - qonnx| <= {np.abs(executed - logits).max():.3g}"
        )


def embed_weights(path: Path) -> None:
    """One self-contained .onnx: the exporter writes the weights to <name>.onnx.data."""
    import onnx

    model = onnx.load(str(path))
    onnx.save(model, str(path), save_as_external_data=False)
    Path(str(path) + ".data").unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=["larq", "brevitas"])
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    {"larq": make_larq, "brevitas": make_brevitas}[args.part]()


if __name__ == "__main__":
    main()
