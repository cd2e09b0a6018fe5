"""binary_residual1d beyond its compile tests (tests/test_compile.py, test_kernels.py,
test_firmware_models.py, test_properties.py): the model file round trip, malformed files
and misplaced blocks refused in one line, and the `shortcuts` option of conv_classifier,
the recipe and `tinybnn train`."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from modelcheck import calibrate, random_inputs, signals
from test_compile import residual_case
from test_validation import assert_one_line, payload_of

import tinybnn
from tinybnn import ModelError, TinyBNNError
from tinybnn.cli import main
from tinybnn.compiler import reference
from tinybnn.compiler.lowering import lower
from tinybnn.models import conv_classifier
from tinybnn.nn import (
    BatchNormSign,
    BinaryConv1d,
    BinaryResidual1d,
    GlobalPool1d,
    InputConv1d,
    Int8Linear,
    Sequential,
)
from tinybnn.ops.residual import FloatResidual
from tinybnn.training.twin import FloatTwin


def shortcut_model() -> Sequential:
    """input conv, sign, binary conv 8 -> 33 keeping sums, pool, blocks k=3 and k=5, sign."""
    torch.manual_seed(3)
    layers, t = residual_case(33, 23, (3, 5), pool=(2, 2), rsign=True)
    model = Sequential(*layers(), input_shape=(3, t))
    return calibrate(model, signals(12, 3, t, 3), 3)


def test_save_load_round_trip(tmp_path):
    model = shortcut_model()
    tinybnn.save(model, tmp_path / "m.pt")
    again = tinybnn.load(tmp_path / "m.pt").eval()
    assert again.spec() == model.spec()
    assert [layer.kind for layer in again.layers].count("binary_residual1d") == 2
    x = np.concatenate([signals(6, 3, 23, 4), random_inputs(2, 3, 23, 5)])
    with torch.no_grad():
        want = model(torch.tensor(x, dtype=torch.float64))
        got = again(torch.tensor(x, dtype=torch.float64))
    assert torch.equal(got, want)
    assert np.array_equal(reference.run(lower(again), x), want.numpy().astype(np.int64))


# layers: 0 input_conv1d, 1 batchnorm_sign, 2 binary_conv1d, 3 maxpool1d,
# 4 binary_residual1d, 5 binary_residual1d, 6 batchnorm_sign, 7 global_pool1d, 8 int8_linear
def field(i, name, value):
    return lambda p: p["spec"]["layers"][i].__setitem__(name, value)


def tensor(name, make):
    return lambda p: p["state_dict"].__setitem__(name, make(p["state_dict"][name]))


MALFORMED = [
    pytest.param(field(4, "kernel_size", 4), "layer 4 (binary_residual1d): kernel_size must be odd ('same' padding), not 4", id="even_kernel"),
    pytest.param(field(4, "kernel_size", 0), "layer 4 (binary_residual1d): kernel_size must be an integer in [1,", id="kernel0"),
    pytest.param(field(5, "channels", 40), "layer 5 (binary_residual1d): channels=40, but the input is sum[33, 11]", id="channels"),
    pytest.param(field(4, "pad_value", 0), "layer 4 (binary_residual1d): pad_value must be one of 1, -1, not 0", id="pad_value"),
    pytest.param(field(5, "quantizer", "magic"), "layer 5 (binary_residual1d): quantizer must be one of", id="quantizer"),
    pytest.param(field(2, "scaling", True), "layer 4 (binary_residual1d): takes sums of +-1 products (a binary_conv1d without scaling, or another binary_residual1d), not acc[33, 11]", id="after_scaled_conv"),
    pytest.param(tensor("layers.4.sign.bn.running_var", lambda t: t - t.max() - 1), "layer 4 (binary_residual1d): sign.bn.running_var must hold numbers >= 0", id="variance_negative"),
    pytest.param(tensor("layers.5.conv.weight", lambda t: t[:, :, :3]), "layer 5 (binary_residual1d): conv.weight has shape [33, 33, 3], not [33, 33, 5]", id="weight_shape"),
]  # fmt: skip


@pytest.mark.parametrize("change,message", MALFORMED)
def test_malformed_model_files_are_refused_in_one_line(change, message, tmp_path):
    payload = payload_of(shortcut_model())
    change(payload)
    path = tmp_path / "model.pt"
    torch.save(payload, path)
    with pytest.raises(TinyBNNError) as e:
        tinybnn.load(path)
    assert_one_line(str(e.value), f"{path}: ", message)


def test_a_block_needs_the_sums_of_a_binary_conv():
    with pytest.raises(ModelError) as e:
        Sequential(
            InputConv1d(3, 8, 3),
            BinaryResidual1d(8),
            BatchNormSign(8),
            GlobalPool1d(),
            Int8Linear(8, 2),
            input_shape=(3, 9),
        )
    assert str(e.value).startswith("layer 1 (binary_residual1d): takes sums of +-1 products")


def test_conv_classifier_shortcuts():
    plain = conv_classifier(3, 64, 4, widths=(32, 64, 64, 64))
    model = conv_classifier(3, 64, 4, widths=(32, 64, 64, 64), shortcuts=True)
    kinds = [layer.kind for layer in model.layers]
    assert kinds.count("binary_residual1d") == 2 and kinds.count("binary_conv1d") == 1
    # the sign before each block moved into it: as many signs and binary weights as before
    signs = [m for m in model.modules() if isinstance(m, BatchNormSign)]
    assert len(signs) == len([m for m in plain.modules() if isinstance(m, BatchNormSign)])
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in plain.parameters())
    assert model.values[-3] == plain.values[-3]  # the same pooling: bin[64, 4]
    twin = FloatTwin(model)
    assert sum(isinstance(m, FloatResidual) for m in twin.modules()) == 2
    assert twin(torch.randn(2, 3, 64)).shape == (2, 4)
    with pytest.raises(ModelError, match="one of shortcuts and scaling"):
        conv_classifier(3, 64, 4, shortcuts=True, scaling=True)
    # widths that change get no shortcut; the first binary conv never does
    kinds = [
        layer.kind for layer in conv_classifier(3, 64, 4, widths=(32, 32), shortcuts=True).layers
    ]
    assert "binary_residual1d" not in kinds


def test_train_with_shortcuts_from_the_cli(tmp_path, signals_npz, capsys):
    out = tmp_path / "m.pt"
    args = [str(signals_npz), "-o", str(out), "--shortcuts", "--epochs", "1", "--threads", "1"]
    assert main(["train", *args, "--widths", "16,32,32", "--no-progress"]) == 0
    model = tinybnn.load(out)
    assert "binary_residual1d" in [layer.kind for layer in model.layers]
    tinybnn.compile(model, tmp_path / "c", "m")


def test_a_shortcut_model_does_not_stream(tmp_path):
    """Streaming carries bits between column stages, not a shortcut's sums: refused in one
    line naming the layer, even where nothing pads (valid conv, k=1 block)."""
    torch.manual_seed(0)
    model = Sequential(
        InputConv1d(3, 8, 3),
        BatchNormSign(8),
        BinaryConv1d(8, 33, 3),
        BinaryResidual1d(33, 1),
        BatchNormSign(33),
        GlobalPool1d(),
        Int8Linear(33, 3),
        input_shape=(3, 16),
    ).eval()
    with pytest.raises(ModelError) as e:
        tinybnn.compile(model, tmp_path, "m", streaming=True)
    assert_one_line(
        str(e.value),
        "layer 2 (binary_conv1d): cannot stream exactly: a shortcut's integer sums do not stream",
    )
    with pytest.raises(ModelError, match="use one of shortcuts and padding='valid'"):
        conv_classifier(3, 64, 4, shortcuts=True, padding="valid")
