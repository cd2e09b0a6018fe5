"""What the commands write: never over their inputs, and C that always builds under the
strict flags and cannot be injected into (issue 13).

Each table names its cases; every refusal is checked to be one `error:` line through
`tinybnn.cli.main`, with the input byte-identical afterwards and nothing else written.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_codegen import golden_model

import tinybnn
from tinybnn.cli import main
from tinybnn.training.data import save_dataset

TS = """\
@problemName Tiny
@univariate true
@classLabel true a b
@data
1,2,3:a
4,5,6:b
"""


def run_cli(capsys, *args) -> tuple[int, str]:
    status = main([str(a) for a in args])
    return status, capsys.readouterr().err


def assert_refused(status: int, err: str, *fragments: str) -> None:
    assert status == 1, err
    assert "Traceback" not in err and "unexpected" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ")
    for f in fragments:
        assert f in err, err


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under root with its bytes (None for a directory or a link)."""
    out = {}
    for p in sorted(root.rglob("*")):
        out[str(p.relative_to(root))] = None if p.is_dir() or p.is_symlink() else p.read_bytes()
    return out


# --- 1. No command overwrites its inputs -------------------------------------------------


def setup_ts(tmp: Path) -> None:
    (tmp / "train.ts").write_text(TS)
    (tmp / "test.ts").write_text(TS.replace("4,5,6", "7,8,9"))
    (tmp / "sub").mkdir()
    os.symlink("train.ts", tmp / "alias.ts")
    os.link(tmp / "train.ts", tmp / "hard.ts")


def setup_model(tmp: Path) -> None:
    (tmp / "out").mkdir()
    for fname in ("m.h", "m.c", "tinybnn_kernels.h"):
        tinybnn.save(golden_model(), tmp / "out" / fname)
    os.symlink("out/m.h", tmp / "alias.pt")


def setup_npz(tmp: Path) -> None:
    from conftest import make_signals

    save_dataset(tmp / "d.npz", *make_signals(seed=0, per_class=4))
    save_dataset(tmp / "v.npz", *make_signals(seed=1, per_class=4))


# id -> (setup, argv, fragments of the one error line)
OVERWRITES = {
    "convert_onto_itself": (setup_ts, ["convert", "train.ts", "train.ts"], ["is the .ts file"]),
    "convert_test_onto_like": (
        setup_ts,
        ["convert", "test.ts", "train.ts", "--like", "train.ts"],
        ["train.ts: is the --like file"],
    ),
    "convert_through_dotdot": (
        setup_ts,
        ["convert", "train.ts", "sub/../train.ts"],
        ["sub/../train.ts: is the .ts file"],
    ),
    "convert_onto_a_symlink_to_it": (setup_ts, ["convert", "train.ts", "alias.ts"], ["alias.ts"]),
    "convert_onto_a_hard_link_to_it": (setup_ts, ["convert", "train.ts", "hard.ts"], ["hard.ts"]),
    "convert_onto_a_directory": (setup_ts, ["convert", "train.ts", "sub"], ["is a directory"]),
    "compile_header_is_the_model": (
        setup_model,
        ["compile", "out/m.h", "-o", "out", "--name", "m"],
        ["out/m.h: is the model file"],
    ),
    "compile_source_is_the_model": (
        setup_model,
        ["compile", "out/m.c", "-o", "out", "--name", "m"],
        ["out/m.c: is the model file"],
    ),
    "compile_kernels_header_is_the_model": (
        setup_model,
        ["compile", "out/tinybnn_kernels.h", "-o", "out", "--name", "k"],
        ["out/tinybnn_kernels.h: is the model file"],
    ),
    "compile_through_a_symlinked_model": (
        setup_model,
        ["compile", "alias.pt", "-o", "out", "--name", "m"],
        ["out/m.h: is the model file"],
    ),
    "train_onto_the_validation_data": (
        setup_npz,
        ["train", "d.npz", "--val-data", "v.npz", "-o", "v.npz", "--epochs", "1"],
        ["v.npz: is the validation data"],
    ),
}


@pytest.mark.parametrize("setup,argv,fragments", OVERWRITES.values(), ids=OVERWRITES.keys())
def test_no_command_overwrites_its_inputs(setup, argv, fragments, tmp_path, monkeypatch, capsys):
    setup(tmp_path)
    before = snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)
    status, err = run_cli(capsys, *argv)
    assert_refused(status, err, *fragments)
    assert snapshot(tmp_path) == before, "a refused command changed or added a file"
