"""Layers, quantizers and model files: forwards, gradients, shapes, clipping, refusals."""

from __future__ import annotations

import zipfile

import pytest
import torch

import tinybnn
from tinybnn import TinyBNNError
from tinybnn.nn import (
    BatchNormSign,
    BinaryConv1d,
    BinaryLinear,
    GlobalPool1d,
    InputConv1d,
    Int8Linear,
    MaxPool1d,
    Sequential,
    clip_latent_,
)
from tinybnn.quantizers import ApproxSignFn, RSign, SteSignFn

X = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0], requires_grad=True)


@pytest.mark.parametrize("fn", [SteSignFn, ApproxSignFn], ids=["ste", "approx"])
def test_quantizer_forward_is_sign_with_sign0_plus_one(fn):
    assert fn.apply(X).tolist() == [-1, -1, -1, 1, 1, 1, 1]


def grad_of(fn, x=X):
    x = x.detach().clone().requires_grad_(True)
    fn(x).sum().backward()
    return x.grad.tolist()


def test_ste_gradient_is_cancelled_outside_unit_interval():
    assert grad_of(SteSignFn.apply) == [0, 1, 1, 1, 1, 1, 0]


def test_approx_sign_gradient_is_piecewise_linear():
    assert grad_of(ApproxSignFn.apply) == [0, 0, 1, 2, 1, 0, 0]


def test_rsign_learns_a_per_channel_threshold():
    q = RSign(2, "ste")
    with torch.no_grad():
        q.threshold.copy_(torch.tensor([0.5, -0.5]))
    x = torch.tensor([[[0.4], [-0.4]]], requires_grad=True)
    y = q(x)
    assert y.flatten().tolist() == [-1, 1]
    y.sum().backward()
    assert q.threshold.grad.tolist() == [-1, -1]
    assert x.grad.flatten().tolist() == [1, 1]


@pytest.mark.parametrize("c", [1, 31, 32, 33, 64, 65])
@pytest.mark.parametrize("t", [7, 16, 33])
def test_layer_shapes(c, t):
    model = Sequential(
        InputConv1d(3, c, 3, padding=1),
        BatchNormSign(c),
        BinaryConv1d(c, c, 3, stride=2, padding=1, pad_value=-1),
        MaxPool1d(2, 1),
        BatchNormSign(c),
        GlobalPool1d("sum"),
        Int8Linear(c, 4),
        input_shape=(3, t),
    )
    t2 = (t + 2 - 3) // 2 + 1
    assert [v.shape for v in model.values] == [
        (c, t),
        (c, t),
        (c, t2),
        (c, t2 - 1),
        (c, t2 - 1),
        (c,),
        (4,),
    ]
    x = torch.randint(-1000, 1000, (2, 3, t)).float()
    assert model(x).shape == (2, 4)
    for out, v in zip(model.eval().activations(x), model.values, strict=True):
        assert tuple(out.shape[1:]) == v.shape


def test_binary_padding_uses_the_declared_value():
    conv = BinaryConv1d(1, 1, 3, padding=1, pad_value=-1).eval()
    with torch.no_grad():
        conv.weight.fill_(1.0)
    out = conv(torch.ones(1, 1, 4))
    assert out.flatten().tolist() == [1, 3, 3, 1]  # -1 + 1 + 1 at each edge, never 0 + 1 + 1


def test_latent_weights_are_clipped():
    model = Sequential(
        InputConv1d(2, 4, 3),
        BatchNormSign(4),
        GlobalPool1d(),
        BinaryLinear(4, 2, bias=True),
        input_shape=(2, 8),
    )
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(3.0)
    clip_latent_(model)
    assert model.layers[0].weight.max() == 1 and model.layers[3].weight.max() == 1
    assert model.layers[1].bn.weight.max() == 3, "BatchNorm is not a latent binary weight"


def small_model() -> Sequential:
    torch.manual_seed(0)
    return Sequential(
        InputConv1d(2, 8, 3),
        BatchNormSign(8),
        GlobalPool1d(),
        Int8Linear(8, 3),
        input_shape=(2, 10),
        class_names=["a", "b", "c"],
    )


def test_save_load_round_trip_with_weights_only(tmp_path):
    model = small_model().eval()
    path = tmp_path / "m.pt"
    tinybnn.save(model, path)
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "tinybnn-model" and raw["spec"] == model.spec()
    again = tinybnn.load(path)
    x = torch.randint(-500, 500, (3, 2, 10))
    assert torch.equal(again(x), model(x))
    assert again.class_names == ["a", "b", "c"]


def refuse_cases(tmp_path):
    good = tmp_path / "good.pt"
    tinybnn.save(small_model(), good)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    newer = tmp_path / "newer.pt"
    payload = torch.load(good, weights_only=True)
    torch.save({**payload, "version": 99}, newer)
    tampered = tmp_path / "tampered.pt"
    payload = torch.load(good, weights_only=True)
    payload["spec"]["layers"][0]["out_channels"] = 9
    torch.save(payload, tampered)
    pickled = tmp_path / "pickled.pt"
    torch.save({"format": "tinybnn-model", "obj": zipfile.ZipInfo("x")}, pickled)
    text = tmp_path / "text.pt"
    text.write_text("hello")
    return [
        (truncated, "not a tinybnn model file"),
        (foreign, "not a tinybnn model file"),
        (newer, "version 99 is newer"),
        (tampered, r"layer 1 \(batchnorm_sign\): num_features=8"),
        (pickled, "Python objects"),
        (text, "not a tinybnn model file"),
        (tmp_path / "missing.pt", "no such model file"),
    ]


def test_load_refuses_foreign_truncated_and_tampered_files(tmp_path):
    for path, message in refuse_cases(tmp_path):
        with pytest.raises(TinyBNNError, match=message) as e:
            tinybnn.load(path)
        assert "\n" not in str(e.value) and str(path) in str(e.value)
