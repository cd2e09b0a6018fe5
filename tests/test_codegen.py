"""The emitted C itself: a golden copy, the report against the C's declarations, several
models in one program, and refusals at compile time."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from modelcheck import calibrate, signals

from tinybnn import ModelError, TinyBNNError
from tinybnn.compiler import reference
from tinybnn.compiler.api import compile
from tinybnn.compiler.lowering import lower
from tinybnn.firmware import host
from tinybnn.nn import (
    BatchNormSign,
    BinaryConv1d,
    GlobalPool1d,
    InputConv1d,
    Int8Linear,
    Sequential,
)

GOLDEN = Path(__file__).parent / "golden"


def golden_model() -> Sequential:
    """A small model whose every number comes from torch's seeded CPU generator."""
    torch.manual_seed(1234)
    model = Sequential(
        InputConv1d(3, 8, 3, padding=1),
        BatchNormSign(8),
        BinaryConv1d(8, 33, 3, stride=2, padding=1, pad_value=-1),
        BatchNormSign(33),
        GlobalPool1d("sum"),
        Int8Linear(33, 3),
        input_shape=(3, 16),
        class_names=["tap", "double tap", "none"],
    )
    g = torch.Generator().manual_seed(99)
    with torch.no_grad():
        model.layers[0].offset.copy_(torch.tensor([10, -20, 30]))
        model.layers[0].multiplier.copy_(torch.tensor([5, 7, 9]))
        model.layers[0].shift.fill_(12)
        for bn, k in ((model.layers[1], 300), (model.layers[3], 24)):
            c = bn.num_features
            bn.bn.running_mean.copy_((torch.rand(c, generator=g) - 0.5) * k)
            bn.bn.running_var.copy_(torch.rand(c, generator=g) * k + 1)
            bn.bn.weight.copy_(torch.randn(c, generator=g))
            bn.bn.bias.copy_(torch.randn(c, generator=g))
        model.layers[5].bias.copy_(torch.randn(3, generator=g) * 10)
    return model.eval()


def test_golden_c(tmp_path):
    """The generated C of a fixed model; TINYBNN_UPDATE_GOLDEN=1 rewrites the copy."""
    compile(
        golden_model(),
        tmp_path,
        "golden",
        command="tinybnn compile golden.pt -o golden --name golden",
    )
    for fname in ("golden.h", "golden.c"):
        text = (tmp_path / fname).read_text()
        if os.environ.get("TINYBNN_UPDATE_GOLDEN"):
            (GOLDEN / fname).write_text(text)
        assert text == (GOLDEN / fname).read_text(), f"{fname} differs from tests/golden/{fname}"


def nm_sizes(obj: Path) -> dict[str, int]:
    out = subprocess.run(
        ["nm", "-S", "--size-sort", str(obj)], capture_output=True, text=True, check=True
    )
    sizes = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) == 4:
            sizes[parts[3]] = int(parts[1], 16)
    return sizes


def test_report_matches_the_c_declarations(tmp_path):
    model = golden_model()
    result = compile(model, tmp_path, "rep")
    obj = tmp_path / "rep.o"
    subprocess.run(["gcc", "-c", "-O0", str(tmp_path / "rep.c"), "-o", str(obj)], check=True)
    sizes = nm_sizes(obj)
    for s in result.cmodel.stages:
        declared = sum(v for k, v in sizes.items() if re.fullmatch(rf"{s.prefix}_\w+", k))
        assert declared == s.flash_bytes, (
            f"stage {s.index}: C declares {declared}, report says {s.flash_bytes}"
        )
    header = (tmp_path / "rep.h").read_text()
    assert f"#define REP_ARENA_BYTES {result.cmodel.arena_bytes}\n" in header
    # Each buffer is as large as its stage's output, and the plan never overlaps a stage's
    # input with its output.
    for s in result.cmodel.stages[1:]:
        if s.out_offset is None:
            continue
        prev = result.cmodel.stages[s.index - 1]
        a = (prev.out_offset, prev.out_offset + prev.stage.out_bytes())
        b = (s.out_offset, s.out_offset + s.stage.out_bytes())
        assert a[1] <= b[0] or b[1] <= a[0]
        assert max(a[1], b[1]) <= result.cmodel.arena_bytes
    assert "total" in result.report()


def test_two_models_link_into_one_program(tmp_path):
    """Every symbol carries the model's name: two models, one executable, both exact."""
    x = signals(5, 3, 16, 0)
    models = {"left": golden_model(), "right": calibrate(golden_model(), x, 7)}
    for name, m in models.items():
        compile(m, tmp_path, name)
    main = tmp_path / "main.c"
    main.write_text(
        '#include <stdio.h>\n#include "left.h"\n#include "right.h"\n'
        "int main(void) {\n"
        "  static int16_t x[16 * 3]; static uint32_t a[(LEFT_ARENA_BYTES + RIGHT_ARENA_BYTES) / 4 + 1];\n"
        "  int32_t s[3];\n"
        "  for (int i = 0; i < 48; i++) x[i] = (int16_t)(i * 1000 - 20000);\n"
        '  printf("%d ", left_classify(x, s, a)); printf("%d %d %d ", s[0], s[1], s[2]);\n'
        '  printf("%d ", right_classify(x, s, a)); printf("%d %d %d\\n", s[0], s[1], s[2]);\n'
        "  return 0;\n}\n"
    )
    exe = tmp_path / "both"
    subprocess.run(
        [
            "gcc",
            *host.STRICT_FLAGS,
            f"-I{tmp_path}",
            str(tmp_path / "left.c"),
            str(tmp_path / "right.c"),
            str(main),
            "-o",
            str(exe),
        ],
        check=True,
    )
    got = [
        int(v)
        for v in subprocess.run(
            [str(exe)], capture_output=True, text=True, check=True
        ).stdout.split()
    ]
    window = (np.arange(48) * 1000 - 20000).reshape(16, 3).T[None]
    want = []
    for m in models.values():
        scores = reference.run(lower(m), window)[0]
        want += [int(np.argmax(scores)), *map(int, scores)]
    assert got == want


def refusals():
    def swapped_float_layer():
        m = golden_model()
        m.layers[2] = torch.nn.Conv1d(8, 33, 3)
        return m, r"layer 2 \(Conv1d\): not a tinybnn layer"

    def overflow():
        m = Sequential(
            InputConv1d(6, 8, 9, weights="int8"),
            BatchNormSign(8),
            GlobalPool1d(),
            Int8Linear(8, 2),
            input_shape=(6, 32),
        )
        with torch.no_grad():
            m.layers[0].multiplier.fill_(1000)
        return m, r"layer 0 \(input_conv1d\): the int32 accumulator could overflow"

    def nan_weight():
        m = golden_model()
        with torch.no_grad():
            m.layers[3].bn.running_var[0] = float("nan")
        return m, "NaN"

    def conv_without_sign():
        m = golden_model()
        m.layers[3] = torch.nn.Identity()
        return m, r"layer 3 \(Identity\): not a tinybnn layer"

    return [swapped_float_layer, overflow, nan_weight, conv_without_sign]


@pytest.mark.parametrize("case", refusals(), ids=lambda f: f.__name__)
def test_compile_refuses_what_it_cannot_compute_exactly(case, tmp_path):
    model, message = case()
    with pytest.raises(TinyBNNError, match=message):
        compile(model, tmp_path / "out", "m")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir()), (
        "nothing half-written"
    )


def test_kernel_longer_than_input_is_refused_at_construction():
    with pytest.raises(ModelError, match=r"layer 0 \(input_conv1d\): kernel_size 9 is longer"):
        Sequential(
            InputConv1d(2, 8, 9),
            BatchNormSign(8),
            GlobalPool1d(),
            Int8Linear(8, 2),
            input_shape=(2, 5),
        )


def test_bad_name_is_refused(tmp_path):
    with pytest.raises(TinyBNNError, match="C identifier"):
        compile(golden_model(), tmp_path, "9lives")


def test_class_names_that_clash_as_macros_stay_distinct(tmp_path):
    model = golden_model()
    model.class_names = ["tap!", "tap?", "double tap"]
    compile(model, tmp_path, "m")
    header = (tmp_path / "m.h").read_text()
    for line in (
        "#define M_CLASS_TAP_0 0",
        "#define M_CLASS_TAP_1 1",
        "#define M_CLASS_DOUBLE_TAP 2",
    ):
        assert line in header
    host.build(tmp_path, "m")  # and it still builds under -Werror
