"""Hostile input (issue 13): every refusal is one line that names the file and the layer,
never a traceback or an "unexpected" error, and nothing compiles to C that computes something
else. One case per class: constructor arguments, model files (spec and tensors), integers
that would wrap in a narrowing cast, the accumulator bound at 2^31 - 1, sizes, labels and the
command line."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from conftest import make_signals
from modelcheck import check_model, random_inputs

import tinybnn
from tinybnn import ModelError, TinyBNNError
from tinybnn.cli import main
from tinybnn.compiler import contract
from tinybnn.compiler.lowering import lower
from tinybnn.models import conv_classifier
from tinybnn.nn import (
    BatchNormSign,
    BinaryConv1d,
    BinaryLinear,
    GlobalPool1d,
    InputConv1d,
    Int8Linear,
    MaxPool1d,
    Sequential,
)
from tinybnn.training.data import Dataset


def assert_one_line(message: str, *fragments: str) -> None:
    assert "\n" not in message and "unexpected" not in message.lower(), message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


# ---------------------------------------------------------------------------------------
# Constructors: one schema per layer kind, checked before anything is allocated.

CONSTRUCTOR_REFUSALS = [
    pytest.param(lambda: MaxPool1d(0), "maxpool1d: kernel_size must be an integer in [1,", id="pool_k0"),
    pytest.param(lambda: MaxPool1d(-3), "maxpool1d: kernel_size must be", id="pool_k_negative"),
    pytest.param(lambda: MaxPool1d(2, stride=0), "maxpool1d: stride must be", id="pool_stride0"),
    pytest.param(lambda: InputConv1d(2, 8, 3, stride=0), "input_conv1d: stride must be", id="conv_stride0"),
    pytest.param(lambda: BinaryConv1d(8, 8, 2.5), "binary_conv1d: kernel_size must be an integer", id="kernel_float"),
    pytest.param(lambda: BinaryConv1d(8, 8, 3, padding=-1), "padding must be an integer in [0,", id="padding_negative"),
    pytest.param(lambda: BinaryConv1d(8, 8, 2, padding="same"), "binary_conv1d: padding='same' needs an odd", id="same_even"),
    pytest.param(lambda: BinaryConv1d(8, 8, 3, pad_value=True), "pad_value must be one of 1, -1, not True", id="pad_value_bool"),
    pytest.param(lambda: BatchNormSign(8, eps="x"), "batchnorm_sign: eps must be a number in (0, 1], not 'x'", id="eps_str"),
    pytest.param(lambda: BatchNormSign(8, eps=0.0), "eps must be a number in (0, 1]", id="eps_zero"),
    pytest.param(lambda: BatchNormSign(8, eps=float("nan")), "eps must be", id="eps_nan"),
    pytest.param(lambda: BatchNormSign(8, momentum=2), "momentum must be a number in [0, 1] or None", id="momentum"),
    pytest.param(lambda: BatchNormSign(8, quantizer="tanh"), "quantizer must be one of 'ste', 'approx'", id="quantizer"),
    pytest.param(lambda: BatchNormSign(8, rprelu="yes"), "rprelu must be True or False", id="rprelu_str"),
    pytest.param(lambda: GlobalPool1d("mean"), "global_pool1d: mode must be one of 'sum', 'max'", id="pool_mode"),
    pytest.param(lambda: Int8Linear("8", 3), "int8_linear: in_features must be an integer", id="features_str"),
    pytest.param(lambda: BinaryLinear(8, 3, bias=True, scaling=True), "binary_linear: a classifier (bias=True) cannot use scaling", id="classifier_scaling"),
    pytest.param(lambda: InputConv1d(2, 8, 3, input_range=(5, 5)), "input_range must be two integers lo < hi within [-32768, 32767]", id="range_empty"),
    pytest.param(lambda: InputConv1d(2, 8, 3, input_range=(-(2**63), 0)), "input_range must be", id="range_int64"),
    pytest.param(lambda: InputConv1d(2, 10**8, 5), "input_conv1d: out_channels must be an integer in [1, 524288], not 100000000", id="channels_huge"),
    pytest.param(lambda: BinaryConv1d(5000, 5000, 3), "binary_conv1d: its weights would take 8.9 MiB on the device, more than the 4.0 MiB", id="weights_huge"),
    pytest.param(lambda: Sequential(InputConv1d(2, 8, 3), BatchNormSign(8), GlobalPool1d(), Int8Linear(8, 3), input_shape=(0, 10)), "input_shape must be [channels, length]", id="input_shape_zero"),
    pytest.param(lambda: Sequential(InputConv1d(2, 8, 3), BatchNormSign(8), GlobalPool1d(), Int8Linear(8, 3), input_shape=(2, 10**6)), "input_shape [2, 1000000]: one window of int16 samples would take 3.8 MiB", id="window_huge"),
    pytest.param(lambda: Sequential(InputConv1d(1, 4096, 1), BatchNormSign(4096), GlobalPool1d(), Int8Linear(4096, 3), input_shape=(1, 4096)), "layer 0 (input_conv1d): its output acc[4096, 4096] would take 64.0 MiB of RAM", id="activations_huge"),
    pytest.param(lambda: Sequential(InputConv1d(2, 8, 3), BatchNormSign(8), GlobalPool1d(), Int8Linear(8, 2000), input_shape=(2, 10)), "layer 3 (int8_linear): 2000 classes; tinybnn classifies into at most 1024", id="classes_huge"),
    pytest.param(lambda: Sequential(InputConv1d(2, 8, 3), BatchNormSign(8), GlobalPool1d(), Int8Linear(8, 2), input_shape=(2, 10), class_names=["a", 1]), "class name 1 must be a string of 1 to 64 characters, not 1", id="class_name_int"),
    pytest.param(lambda: conv_classifier(6, 64, 3, widths=(10**8,)), "layer 0 (input_conv1d): out_channels must be", id="widths_huge"),
    pytest.param(lambda: conv_classifier(6, 64, 3, widths=(32, 5000, 5000)), "layer 6 (binary_conv1d): its weights would take", id="widths_weights"),
]  # fmt: skip


@pytest.mark.parametrize("build,message", CONSTRUCTOR_REFUSALS)
def test_constructors_refuse_what_pytorch_or_the_device_cannot_run(build, message):
    start = time.perf_counter()
    with pytest.raises(ModelError) as e:
        build()
    assert_one_line(str(e.value), message)
    assert time.perf_counter() - start < 2, "refused only after allocating"


def test_constructors_store_plain_python_values():
    conv = InputConv1d(np.int64(2), 8, 3, input_range=[np.int16(-100), 100])
    assert type(conv.in_channels) is int and conv.input_range == (-100, 100)
    assert MaxPool1d(3).stride == 3 and BatchNormSign(4, eps=1).eps == 1.0


# ---------------------------------------------------------------------------------------
# Model files: crafted payloads laid out as `tinybnn.save` writes them.

LAYERS = "0 input_conv1d, 1 maxpool1d, 2 batchnorm_sign, 3 global_pool1d, 4 int8_linear"


def small_model() -> Sequential:
    torch.manual_seed(0)
    return Sequential(
        InputConv1d(2, 8, 3),
        MaxPool1d(2),
        BatchNormSign(8),
        GlobalPool1d(),
        Int8Linear(8, 3),
        input_shape=(2, 10),
        class_names=["a", "b", "c"],
    ).eval()


def payload_of(model: Sequential) -> dict:
    return {
        "format": "tinybnn-model",
        "version": 1,
        "tinybnn": tinybnn.__version__,
        "spec": model.spec(),
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
    }


def field(i: int, name: str, value):
    return lambda p: p["spec"]["layers"][i].__setitem__(name, value)


def tensor(name: str, make):
    """Replace tensor `name` by make(old tensor) (or by `make` itself if not callable)."""
    return lambda p: p["state_dict"].__setitem__(
        name, make(p["state_dict"][name]) if callable(make) else make
    )


def drop(*keys):
    def change(p):
        target = p
        for k in keys[:-1]:
            target = target[k]
        del target[keys[-1]]

    return change


def full(value, dtype=None):
    return lambda t: torch.full(t.shape, value, dtype=dtype or t.dtype)


HOSTILE_FILES = [
    # the spec, against each kind's schema
    pytest.param(field(1, "kernel_size", 0), "layer 1 (maxpool1d): kernel_size must be an integer in [1, 1048576], not 0", id="pool_k0"),
    pytest.param(field(1, "stride", 0), "layer 1 (maxpool1d): stride must be", id="pool_stride0"),
    pytest.param(field(0, "stride", 0), "layer 0 (input_conv1d): stride must be", id="conv_stride0"),
    pytest.param(field(2, "eps", "x"), "layer 2 (batchnorm_sign): eps must be a number in (0, 1], not 'x'", id="eps_str"),
    pytest.param(field(0, "input_range", [0, 2**63]), "layer 0 (input_conv1d): input_range must be", id="range_huge"),
    pytest.param(field(0, "out_channels", 10**8), "layer 0 (input_conv1d): out_channels must be", id="channels_huge"),
    pytest.param(field(4, "in_features", 8.0), "layer 4 (int8_linear): in_features must be an integer", id="features_float"),
    pytest.param(field(2, "bogus", 1), "layer 2 (batchnorm_sign): unknown field 'bogus'", id="unknown_field"),
    pytest.param(drop("spec", "layers", 1, "kernel_size"), "layer 1 (maxpool1d): field kernel_size is missing", id="missing_field"),
    pytest.param(field(3, "kind", "lstm"), "layer 3: unknown kind 'lstm'", id="unknown_kind"),
    pytest.param(lambda p: p["spec"]["layers"].__setitem__(2, "bn"), "layer 2: must be a dict of fields", id="layer_not_dict"),
    pytest.param(lambda p: p["spec"].__setitem__("layers", []), "the spec's layers must be a list of 1 to 256 layers", id="no_layers"),
    pytest.param(lambda p: p["spec"].__setitem__("input_shape", [2, -10]), "input_shape must be [channels, length]", id="input_shape"),
    pytest.param(lambda p: p["spec"].__setitem__("class_names", ["a", None, "c"]), "class name 1 must be a string", id="class_name_none"),
    pytest.param(lambda p: p["spec"].__setitem__("class_names", ["x" * 1000] * 3), "class name 0 must be a string of 1 to 64 characters", id="class_name_long"),
    pytest.param(drop("spec", "class_names"), "the spec's class_names is missing", id="no_class_names"),
    pytest.param(lambda p: p.__setitem__("spec", [1, 2]), "the spec must be a dict, not list", id="spec_list"),
    # every tensor: names, shapes, types, finite values, integer buffers as exact integers
    pytest.param(tensor("layers.0.offset", full(-(2**63))), "layer 0 (input_conv1d): offset must hold integers in [-32768, 32767], not -9223372036854775808", id="offset_int64_min"),
    pytest.param(tensor("layers.0.offset", full(1e19, torch.float64)), "layer 0 (input_conv1d): offset must hold integers in [-32768, 32767], not 1e+19", id="offset_float_huge"),
    pytest.param(tensor("layers.0.offset", full(0.5, torch.float64)), "layer 0 (input_conv1d): offset must hold whole numbers, not 0.5", id="offset_fraction"),
    pytest.param(tensor("layers.0.multiplier", full(0)), "layer 0 (input_conv1d): multiplier must hold integers in [1, 32767], not 0", id="multiplier_zero"),
    pytest.param(tensor("layers.0.shift", full(-1)), "layer 0 (input_conv1d): shift must hold integers in [0, 31], not -1", id="shift_negative"),
    pytest.param(tensor("layers.0.shift", full(-2000)), "shift must hold integers in [0, 31], not -2000", id="shift_overflows_float"),
    pytest.param(tensor("layers.2.bn.running_var", lambda t: t - 2), "layer 2 (batchnorm_sign): bn.running_var must hold numbers >= 0, not -1.0", id="variance_negative"),
    pytest.param(tensor("layers.2.bn.weight", full(float("nan"))), "layer 2 (batchnorm_sign): bn.weight holds NaN or infinity", id="gamma_nan"),
    pytest.param(tensor("layers.4.weight", full(1e300, torch.float64)), "layer 4 (int8_linear): weight holds NaN or infinity (in torch.float32)", id="float64_to_inf"),
    pytest.param(tensor("layers.4.weight", lambda t: t.to(torch.int64)), "layer 4 (int8_linear): weight must hold floating-point numbers, not torch.int64", id="weight_ints"),
    pytest.param(tensor("layers.0.weight", lambda t: t[:4]), "layer 0 (input_conv1d): weight has shape [4, 2, 3], not [8, 2, 3]", id="weight_shape"),
    pytest.param(tensor("layers.4.bias", [0.0, 1.0, 2.0]), "layer 4 (int8_linear): bias must be a dense tensor, not list", id="bias_list"),
    pytest.param(tensor("layers.0.offset", lambda t: t.to(torch.complex64)), "offset must hold integers, not torch.complex64", id="offset_complex"),
    pytest.param(tensor("layers.7.weight", torch.zeros(3)), "the model: holds an unknown tensor 'layers.7.weight'", id="unknown_tensor"),
    pytest.param(drop("state_dict", "layers.2.bn.running_mean"), "layer 2 (batchnorm_sign): bn.running_mean is missing", id="missing_tensor"),
    pytest.param(tensor("log_temperature", full(float("inf"))), "the model: log_temperature holds NaN or infinity", id="temperature_inf"),
    # the envelope
    pytest.param(drop("version"), "the model format version is missing", id="no_version"),
    pytest.param(lambda p: p.__setitem__("version", "1"), "the model format version '1' is not valid", id="version_str"),
    pytest.param(drop("state_dict"), "the model file's state_dict is missing", id="no_state_dict"),
]  # fmt: skip


@pytest.mark.parametrize("change,message", HOSTILE_FILES)
def test_hostile_model_files_are_refused_naming_file_and_layer(change, message, tmp_path):
    payload = payload_of(small_model())
    change(payload)
    path = tmp_path / "model.pt"
    torch.save(payload, path)
    with pytest.raises(TinyBNNError) as e:
        tinybnn.load(path)
    assert_one_line(str(e.value), f"{path}: ", message)


def test_a_directory_is_not_a_model_file(tmp_path):
    with pytest.raises(TinyBNNError) as e:
        tinybnn.load(tmp_path)
    assert_one_line(str(e.value), f"{tmp_path}: is a directory")


def test_load_converts_whole_floats_to_the_integer_buffers(tmp_path):
    """A float tensor holding whole numbers is read exactly, as the integers it holds."""
    model = small_model()
    model.layers[0].offset.copy_(torch.tensor([-32768, 32767]))
    payload = payload_of(model)
    payload["state_dict"]["layers.0.offset"] = torch.tensor(
        [-32768.0, 32767.0], dtype=torch.float64
    )
    torch.save(payload, tmp_path / "m.pt")
    again = tinybnn.load(tmp_path / "m.pt")
    assert again.layers[0].offset.dtype == torch.int64
    assert again.layers[0].offset.tolist() == [-32768, 32767]


# ---------------------------------------------------------------------------------------
# Integers that a narrowing cast would wrap: refused at compile time, naming the layer.


def set_value(path: str, value):
    def change(model):
        *owner, name = path.split(".")
        module = model
        for part in owner:
            module = module[int(part)] if part.isdigit() else getattr(module, part)
        getattr(module, name).data = torch.full_like(getattr(module, name), value)

    return change


COMPILE_REFUSALS = [
    # 1e19 in float32 cast to int64 was INT64_MIN, whose absolute value passed the int32 check
    pytest.param(set_value("layers.4.bias", 1e19), "layer 4 (int8_linear): bias must hold integers in [-2147483648, 2147483647], not 9.99", id="bias_1e19"),
    pytest.param(set_value("layers.4.bias", 2.0**31), "layer 4 (int8_linear): bias must hold integers in", id="bias_2_31"),
    pytest.param(set_value("layers.4.bias", 2.0**31 - 256), "layer 4 (int8_linear): class scores could overflow int32", id="scores_bound"),
    pytest.param(set_value("layers.0.offset", -(2**63)), "layer 0 (input_conv1d): offset must hold integers in [-32768, 32767], not -9223372036854775808", id="offset_int64_min"),
    pytest.param(set_value("layers.0.multiplier", 2**62), "layer 0 (input_conv1d): multiplier must hold integers in [1, 32767]", id="multiplier_huge"),
    pytest.param(set_value("layers.0.shift", -1), "layer 0 (input_conv1d): shift must hold integers in [0, 31], not -1", id="shift_negative"),
    pytest.param(set_value("layers.2.bn.running_var", -1.0), "layer 2 (batchnorm_sign): bn.running_var must hold numbers >= 0", id="variance_negative"),
]  # fmt: skip


@pytest.mark.parametrize("change,message", COMPILE_REFUSALS)
def test_compile_checks_exact_integers(change, message, tmp_path):
    model = small_model()
    change(model)
    with pytest.raises(ModelError) as e:
        tinybnn.compile(model, tmp_path)
    assert_one_line(str(e.value), message)
    assert not list(tmp_path.iterdir()), "nothing is written"


def bound_model(multiplier_1: int) -> Sequential:
    """A first layer whose accumulator bound is 65535 * 32767 + 49151 * multiplier_1, exactly
    2^31 - 1 with multiplier_1 = 2. Its four channels increase, decrease, are always -1 and
    always +1."""
    torch.manual_seed(0)
    model = Sequential(
        InputConv1d(2, 4, 1),
        BatchNormSign(4),
        GlobalPool1d(),
        Int8Linear(4, 3),
        input_shape=(2, 9),
    ).eval()
    conv, bn = model.layers[0], model.layers[1].bn
    with torch.no_grad():
        conv.weight.fill_(0.5)  # all +1: x' of both channels add up at the extremes
        conv.offset.copy_(torch.tensor([32767, 16383]))  # max |x - offset|: 65535, 49151
        conv.multiplier.copy_(torch.tensor([32767, multiplier_1]))
        conv.shift.fill_(20)
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0)
        bn.weight.copy_(torch.tensor([1.0, -1.0, 0.0, 0.0]))
        bn.bias.copy_(torch.tensor([0.25, 0.25, -1.0, 1.0]))
    return model


def test_accumulator_bound_of_exactly_int32_max_compiles_exactly(tmp_path):
    model = bound_model(2)
    x = random_inputs(6, 2, 9, seed=3)
    x[1] = -32768  # the extreme accumulators, -(2^31 - 1) and below it
    x[2] = 32767
    program = check_model(model, [x], tmp_path)
    stage = program.stages[0]
    assert stage.acc_bound == 2**31 - 1
    th = stage.threshold
    assert th.ctype == "int32" and th.th.min() >= -(2**31) and th.th.max() <= 2**31 - 1
    assert stage.run(x[1].T)[0, 0] & 0b0100, "the always -1 channel is -1"


def test_accumulator_bound_past_int32_is_refused(tmp_path):
    with pytest.raises(ModelError) as e:
        lower(bound_model(3))
    assert_one_line(str(e.value), "layer 0 (input_conv1d): the int32 accumulator could overflow")


@pytest.mark.parametrize("value", [-1.0, 1.0], ids=["always_minus", "always_plus"])
def test_thresholds_over_the_whole_int32_range_fit_int32(value):
    lo, hi = -(2**31 - 1), 2**31 - 1
    th = contract.fold_threshold(lambda a: a * 0 + value, 3, lo, hi, "layer 0 (x)")
    assert th.ctype == "int32" and -(2**31) <= th.th.min() and th.th.max() <= 2**31 - 1
    accs = np.array([[lo] * 3, [0] * 3, [hi] * 3])
    assert (th.bits(accs) == (value < 0)).all()


def test_thresholds_that_cannot_fit_name_the_layer():
    with pytest.raises(ModelError, match=r"^layer 2 \(x\): thresholds in "):
        contract.fold_threshold(lambda a: a * 0 - 1, 2, -(2**31), 2**31 - 1, "layer 2 (x)")


# ---------------------------------------------------------------------------------------
# Training data: labels are bounded before anything is sized by them.


@pytest.mark.parametrize(
    "y,message",
    [
        pytest.param(np.full(12, 1_000_000), "y holds label 1000000; tinybnn classifies into at most 1024", id="million"),
        pytest.param(np.full(12, 2**64 - 1, np.uint64), "y holds label 18446744073709551615", id="uint64_max"),
        pytest.param(np.full(12, 1e19), "y holds label 10000000000000000000", id="float_1e19"),
        pytest.param(np.full(12, -(2**63)), "y holds a negative label (-9223372036854775808)", id="int64_min"),
    ],
)  # fmt: skip
def test_labels_are_bounded_before_allocating(y, message):
    X, _ = make_signals(seed=0, per_class=4)
    start = time.perf_counter()
    with pytest.raises(TinyBNNError) as e:
        Dataset(X, y)
    assert_one_line(str(e.value), message)
    assert time.perf_counter() - start < 1


# ---------------------------------------------------------------------------------------
# Messages: the destination the user named, never a temporary file.


def test_a_failed_save_names_the_destination_not_a_temporary_file(tmp_path):
    target = tmp_path / "model.pt"
    target.mkdir()
    with pytest.raises(OSError) as e:
        tinybnn.save(small_model(), target)
    assert e.value.filename == str(target) and ".model.pt." not in str(e.value)
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"], "no temporary file is left"


def test_a_failed_train_output_names_its_destination(tmp_path, signals_npz, capsys):
    (tmp_path / "m_confusion.png").mkdir()  # the last file to move in cannot replace this
    status = main(
        ["train", str(signals_npz), "-o", str(tmp_path / "m.pt"), "--epochs", "1"]
        + ["--widths", "8", "--no-progress"]
    )
    err = capsys.readouterr().err
    assert status == 1
    assert err.strip() == f"error: {tmp_path / 'm_confusion.png'}: Is a directory", err
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")], "staged files left"


# ---------------------------------------------------------------------------------------
# The command line: exit status 1 and one `error:` line that names the file and the layer.


def test_cli_refuses_hostile_model_files_in_one_line(tmp_path, capsys):
    payload = payload_of(small_model())
    payload["state_dict"]["layers.4.bias"] = torch.full((3,), 1e19)  # loads; cannot compile
    path = tmp_path / "bias.pt"
    torch.save(payload, path)
    for command in ("summary", "compile"):
        args = [command, str(path)] + (
            ["-o", str(tmp_path / "out")] if command == "compile" else []
        )
        assert main(args) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
        assert_one_line(err.strip(), "layer 4 (int8_linear): bias must hold integers")
        if command == "summary":
            assert f"error: {path}: layer 4" in err


@pytest.mark.parametrize(
    "args,message",
    [
        pytest.param(["--widths", "100000000"], "layer 0 (input_conv1d): out_channels must be", id="width_huge"),
        pytest.param(["--widths", "32,100000"], "layer 3 (binary_conv1d): its output sum[100000, 32]", id="activations_huge"),
    ],
)  # fmt: skip
def test_cli_refuses_absurd_widths_at_once(args, message, tmp_path, signals_npz, capsys):
    start = time.perf_counter()
    status = main(["train", str(signals_npz), "-o", str(tmp_path / "m.pt"), "--no-progress", *args])
    err = capsys.readouterr().err
    assert status == 1 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert_one_line(err.strip(), message)
    assert time.perf_counter() - start < 5
