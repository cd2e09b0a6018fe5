"""The `tinybnn` command: train, summary and convert end to end, and one-line errors for bad
input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import BAD_DATASETS

import tinybnn
import tinybnn.cli as cli
from tinybnn.cli import main
from tinybnn.training.data import load_dataset

FAST = ["--epochs", "10", "--lr", "0.02", "--widths", "16,32", "--no-progress"]
SCRIPT = Path(sys.executable).with_name("tinybnn")


def run(capsys, *args: str) -> tuple[int, str, str]:
    status = main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_one_error_line(err: str) -> None:
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert err.strip().startswith("error: ")


def test_help_lists_the_commands(capsys):
    status, out, _ = run(capsys, "--help")
    assert status == 0
    assert "train " in out and "summary " in out and "convert " in out


def test_train_then_summary(tmp_path, signals_npz, capsys):
    out = tmp_path / "model.pt"
    status, stdout, err = run(capsys, "train", signals_npz, "-o", out, *FAST)
    assert (status, err) == (0, "")
    assert "last epoch 10/10: training-set accuracy (eval mode)" in stdout
    assert {p.name for p in tmp_path.iterdir()} == {
        "signals.npz",
        "model.pt",
        "model_curves.png",
        "model_confusion.png",
    }
    payload = torch.load(out, map_location="cpu", weights_only=True)
    assert payload["format"] == "tinybnn-model"
    assert tinybnn.load(out).class_names == ["sine", "square", "sawtooth"]

    status, stdout, err = run(capsys, "summary", out)
    assert (status, err) == (0, "")
    assert "input int[6, 64], 3 classes: sine, square, sawtooth" in stdout
    assert "total" in stdout and "compression" in stdout


def test_bad_data_is_one_line_and_writes_nothing(bad_dataset, tmp_path, monkeypatch, capsys):
    path, fragment = bad_dataset
    monkeypatch.chdir(tmp_path)
    status, _, err = run(capsys, "train", path, *FAST)
    assert status == 1
    assert_one_error_line(err)
    assert fragment in err
    assert not list(tmp_path.glob("model*"))


@pytest.mark.parametrize(
    "args, fragment",
    [
        pytest.param(
            ["train", "d.npz", "--bogus"], "No such option '--bogus'", id="unknown_option"
        ),
        pytest.param(["train"], "Missing argument 'DATA'", id="missing_argument"),
        pytest.param(["train", "d.npz", "--widths", "32,x"], "'--widths'", id="bad_widths"),
        pytest.param(["train", "d.npz", "--head", "float"], "'--head'", id="bad_choice"),
        pytest.param(["frobnicate"], "No such command", id="unknown_command"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args, fragment, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    status, _, err = run(capsys, *args)
    assert status == 2
    assert_one_error_line(err)
    assert fragment in err
    assert list(tmp_path.iterdir()) == []


def test_summary_of_a_missing_model(tmp_path, capsys):
    status, _, err = run(capsys, "summary", tmp_path / "none.pt")
    assert status == 1
    assert_one_error_line(err)


def test_interrupt_exits_130(signals_npz, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "train", interrupted)
    status, _, err = run(capsys, "train", signals_npz)
    assert status == 130
    assert_one_error_line(err)


def test_unexpected_errors_are_one_line_too(signals_npz, monkeypatch, capsys):
    def bug(*args, **kwargs):
        raise ValueError("something\nspanning lines")

    monkeypatch.setattr(cli, "train", bug)
    status, _, err = run(capsys, "train", signals_npz)
    assert status == 1
    assert_one_error_line(err)
    assert "ValueError: something spanning lines" in err


@pytest.mark.parametrize(
    "write, args, status",
    [
        pytest.param(BAD_DATASETS["nan"][0], ["--epochs", "1"], 1, id="nan_values"),
        pytest.param(lambda p: None, ["--nonsense"], 2, id="unknown_option"),
    ],
)
def test_installed_script_prints_one_line(write, args, status, tmp_path):
    """The real console script, in a subprocess: the stderr a user sees."""
    write(tmp_path / "d.npz")
    proc = subprocess.run(
        [SCRIPT, "train", "d.npz", *args], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == status
    assert_one_error_line(proc.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == (["d.npz"] if status == 1 else [])


def test_refuses_to_overwrite_the_data(signals_npz, capsys):
    before = signals_npz.read_bytes()
    status, _, err = run(capsys, "train", signals_npz, "-o", signals_npz, *FAST)
    assert status == 1
    assert_one_error_line(err)
    assert "is the training data" in err
    assert signals_npz.read_bytes() == before


@pytest.mark.parametrize(
    "options, says",
    [
        pytest.param(
            ["--teacher", "twin", "--augment", "--keep", "last"],
            ["teacher (float twin): accuracy", "(training set)", "last epoch 2/2"],
            id="twin_teacher_augment_last",
        ),
        pytest.param(
            ["--optimizer", "bop", "--val-fraction", "0.2"],
            ["best epoch", "validation accuracy"],
            id="bop_validation_split_best",
        ),
    ],
)
def test_train_options_write_a_model_that_reloads(tmp_path, signals_npz, capsys, options, says):
    out = tmp_path / "m.pt"
    tiny = ["--epochs", "2", "--widths", "8,16", "--batch-size", "16", "--no-progress"]
    status, stdout, err = run(capsys, "train", signals_npz, "-o", out, *tiny, *options)
    assert (status, err) == (0, "")
    assert all(s in stdout for s in says), stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "m.pt",
        "m_confusion.png",
        "m_curves.png",
        "signals.npz",
    ]
    assert tinybnn.load(out).class_names == ["sine", "square", "sawtooth"]


TS = """\
@problemName Tiny
@univariate false
@dimensions 2
@equalLength false
@classLabel true walk run
@data
1,2,3:4,5,6:run
-1.5,0,2,1:0.25,0.5,1,?:walk
"""


def test_convert_prints_shape_classes_and_scale(tmp_path, capsys):
    ts, npz = tmp_path / "tiny.ts", tmp_path / "tiny.npz"
    ts.write_text(TS)
    status, stdout, err = run(capsys, "convert", ts, npz, "--full-scale", "12000")
    assert (status, err) == (0, "")
    assert f"wrote {npz}: X [2, 2, 4] int16, 2 classes: walk, run" in stdout
    assert "scale (counts per unit, per channel): 2000, 2000" in stdout  # 6 -> 12000
    assert "filled 1 missing values; resampled 1 series to length 4" in stdout
    data = load_dataset(npz)
    assert data.X.shape == (2, 2, 4) and data.class_names == ["walk", "run"]

    status, stdout, err = run(
        capsys, "convert", ts, tmp_path / "c.npz", "--length", "3", "--scaling", "channel"
    )
    assert (status, err) == (0, "")
    assert "X [2, 2, 3] int16" in stdout


def test_convert_names_the_line_of_a_malformed_file(tmp_path, capsys):
    ts = tmp_path / "bad.ts"
    ts.write_text(TS.replace("-1.5,0,2,1:", "-1.5,zero,2,1:"))
    status, _, err = run(capsys, "convert", ts, tmp_path / "bad.npz")
    assert status == 1
    assert_one_error_line(err)
    assert "bad.ts, line 8: dimension 0: 'zero' is not a number" in err
    assert not (tmp_path / "bad.npz").exists()


def test_train_with_reactnet_options_then_compile_for_a_core(tmp_path, signals_npz, capsys):
    out = tmp_path / "model.pt"
    status, _, err = run(
        capsys, "train", signals_npz, "-o", out, *FAST, "--rsign", "--rprelu", "--scaling"
    )
    assert (status, err) == (0, "")
    bn = tinybnn.load(out).layers[2]
    assert bn.rsign is not None and bn.rprelu is not None
    status, stdout, err = run(
        capsys, "compile", out, "-o", tmp_path / "c", "--name", "g", "--target", "cortex-m4"
    )
    assert (status, err) == (0, "")
    assert "total" in stdout and (tmp_path / "c" / "g.c").is_file()


def test_compile_optimize_and_flash_budget(tmp_path, signals_npz, capsys):
    out = tmp_path / "model.pt"
    assert run(capsys, "train", signals_npz, "-o", out, *FAST)[0] == 0
    flash = {}
    for optimize in ("speed", "size"):
        status, stdout, err = run(
            capsys, "compile", out, "-o", tmp_path / optimize, "--target", "cortex-m0",
            "--optimize", optimize,
        )  # fmt: skip
        assert (status, err) == (0, "")
        assert ("bconv1d/vst" in stdout) == (optimize == "speed")
        assert ("bconv1d/vsl" in stdout) == (optimize == "size")
        flash[optimize] = int(stdout.split("\ntotal")[1].split()[0])
    assert flash["size"] < flash["speed"]
    status, _, err = run(capsys, "compile", out, "-o", tmp_path / "x", "--optimize", "fast")
    assert status == 2 and len(err.strip().splitlines()) == 1 and "fast" in err
    assert not (tmp_path / "x").exists()
    # a budget between the two: within it; below the table-free build: refused, one line
    budget = (flash["size"] + flash["speed"]) // 2
    status, stdout, err = run(
        capsys, "compile", out, "-o", tmp_path / "b", "--target", "cortex-m4",
        "--flash-budget", str(budget),
    )  # fmt: skip
    assert (status, err) == (0, "")
    assert flash["size"] <= int(stdout.split("\ntotal")[1].split()[0]) <= budget
    # the fewest constants (the size build, the int8 first layer's weights as bytes) fit;
    # a byte less is refused in one line
    from tinybnn.compiler import codegen, lowering, variants

    program = lowering.lower(tinybnn.load(out))
    least = codegen.build(program, "m", {}, "cortex-m4", variants.CONSTANTS).flash_bytes
    assert least < flash["size"]  # the first layer is int8 (xq: bytes, not int16 pairs)
    for b, want in ((least, 0), (least - 1, 1)):
        status, stdout, err = run(
            capsys, "compile", out, "-o", tmp_path / f"y{b}", "--target", "cortex-m4",
            "--flash-budget", str(b),
        )  # fmt: skip
        assert status == want and len(err.strip().splitlines()) == want
    assert "budget" in err
    assert not (tmp_path / f"y{least - 1}").exists()
