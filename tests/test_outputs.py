"""What the commands write: never over their inputs, and C that always builds under the
strict flags and cannot be injected into (issue 13).

Each table names its cases; every refusal is checked to be one `error:` line through
`tinybnn.cli.main`, with the input byte-identical afterwards and nothing else written.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_codegen import golden_model

import tinybnn
from tinybnn.cli import main
from tinybnn.compiler import codegen
from tinybnn.compiler.api import compile
from tinybnn.firmware import host
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


# --- 2. Generated C: names, class macros, comments -----------------------------------------

STRICT_COMPILERS = ["gcc", "clang"] if shutil.which("clang") else ["gcc"]


def build_all(out: Path, name: str, work: Path | None = None) -> None:
    """The model with the host driver under the strict flags, with every compiler (from a
    copy in `work` when `out` is a path the compiler's -include cannot take)."""
    if work is not None:
        shutil.copytree(out, work)
        out = work
    for cc in STRICT_COMPILERS:
        host.build(out, name, cc=cc)


def class_macro_lines(header: str, name: str) -> dict[str, int]:
    return {
        m.group(1): int(m.group(2))
        for m in re.finditer(rf"^#define {name.upper()}_CLASS_(\w+) (\d+)$", header, re.M)
    }


# id -> three class names (the golden model has three classes)
CLASS_NAMES = {
    "bang_question_index": ["tap!", "tap?", "tap_1"],  # TAP_0, TAP_1 taken -> TAP_1_1
    "index_then_taken_twice": ["tap_1_1", "tap!", "tap?"],
    "case_only": ["tap", "TAP", "Tap"],
    "nothing_left": ["", "!!", "é"],  # all X
    "x_and_empty": ["x_1", "x", ""],
    "comment_and_quotes": ["a */ b", 'say "hi" \\', "??/\n#error no"],
    "longest": ["a" * 64, "€" * 64, "b" * 63 + "!"],
}


@pytest.mark.parametrize("names", CLASS_NAMES.values(), ids=CLASS_NAMES.keys())
def test_class_names_give_distinct_macros_and_build(names, tmp_path):
    model = golden_model()
    model.class_names = list(names)
    compile(model, tmp_path, "m")
    macros = class_macro_lines((tmp_path / "m.h").read_text(), "m")
    assert sorted(macros.values()) == [0, 1, 2], macros
    assert macros == dict(zip(codegen.class_macros(names), range(3), strict=True))
    build_all(tmp_path, "m")


def test_class_macros_loop_until_free():
    assert codegen.class_macros(["tap!", "tap?", "tap_1"]) == ["TAP_0", "TAP_1_1", "TAP_1"]
    assert codegen.class_macros(["a", "a", "a_1", "a_1_1"]) == ["A_0", "A_1_2", "A_1", "A_1_1"]


@given(st.lists(st.text(max_size=6), min_size=1, max_size=12))
@settings(max_examples=10 * settings().max_examples)
def test_class_macros_are_distinct_identifiers(names):
    macros = codegen.class_macros(names)
    assert len(set(macros)) == len(names)
    assert all(re.fullmatch(r"[A-Z0-9_]+", m) and not m.startswith("_") for m in macros)


COMMENT_HAZARDS = ["*/", "/*", "??/", "?" * 5, "\\", "\\ ", "\n#error", "\t", "\0", "\x7f"]


@given(st.lists(st.sampled_from([*COMMENT_HAZARDS, "*", "/", "?", "a", " ", "é"])).map("".join))
@settings(max_examples=20 * settings().max_examples)
def test_comment_text_cannot_end_the_comment(text):
    out = codegen.c_comment(text)
    assert all(32 <= ord(c) < 127 for c in out)
    for bad in ("*/", "/*", "??"):
        assert bad not in out
    assert not re.search(r"\\\s*\Z", out), "a final backslash would splice the next line"


MARKER = "tb_injected_marker"
INJECTIONS = {
    "close_the_comment": f"out*/ int {MARKER}; /*",
    "nested_comment": "out/*",
    "trigraph_splice": f"out*??/\n/ int {MARKER};",
    "final_backslash": "out\\",
    "backslash_space": "out\\ ",
    "newline_directive": f"out\n#error {MARKER}\n",
    "line_comment": "out//",
    "quotes": 'out" "',
}


@pytest.mark.parametrize("out_name", INJECTIONS.values(), ids=INJECTIONS.keys())
def test_output_path_and_command_cannot_inject_code(out_name, tmp_path, monkeypatch, capsys):
    """A crafted output directory, recorded in the command line of the provenance comment:
    the C still builds under the strict flags, and the marker appears in no code."""
    monkeypatch.chdir(tmp_path)
    tinybnn.save(golden_model(), tmp_path / "m.pt")
    argv = ["compile", "m.pt", "-o", out_name, "--name", "m"]
    assert main(argv) == 0, capsys.readouterr().err
    out = tmp_path / "plain"
    build_all(tmp_path / out_name, "m", work=out)
    for fname in ("m.h", "m.c"):
        text = (out / fname).read_text()
        assert f"command:    {codegen.c_comment(shlex.join(['tinybnn', *argv]))}\n" in text
        code = subprocess.run(
            ["gcc", "-std=c99", "-E", "-P", f"-I{out}", str(out / fname)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert MARKER not in code, f"{fname}: the comment let code through"


def test_model_file_name_cannot_inject_code(tmp_path):
    model_file = tmp_path / f"m*??\n#error {MARKER}\n\\"
    tinybnn.save(golden_model(), model_file)
    compile(model_file, tmp_path / "out", "m", command=f"*/ int {MARKER}; /*")
    build_all(tmp_path / "out", "m")
    header = (tmp_path / "out" / "m.h").read_text()
    assert f"model file: m*?\\?\\012#error {MARKER}\\012\\134\n" in header


# id -> (the --name, a fragment of the refusal)
BAD_NAMES = {
    "kernels_header": ("tinybnn_kernels", "tinybnn_kernels, whose header"),
    "libc_guard": ("_stdint", "lower-case C identifier"),
    "leading_underscore": ("_model", "lower-case C identifier"),
    "upper_case": ("Gesture", "lower-case C identifier"),
    "all_caps": ("GESTURE", "lower-case C identifier"),
    "digit_first": ("9lives", "lower-case C identifier"),
    "dash": ("my-model", "lower-case C identifier"),
    "non_ascii": ("gesté", "lower-case C identifier"),
    "empty": ("", "lower-case C identifier"),
    "double_underscore": ("a__b", "'__'"),
    "final_underscore": ("model_", "final '_'"),
    "kernel_prefix": ("tb_model", "outside tb_"),
    "kernel_namespace": ("tb", "outside tb_"),
    "standard_header": ("stdint", "standard C header"),
    "string_header": ("string", "standard C header"),
    "too_long": ("m" * 33, "at most 32 characters"),
    "very_long": ("m" * 100_000, "at most 32 characters"),
}


@pytest.mark.parametrize("name,fragment", BAD_NAMES.values(), ids=BAD_NAMES.keys())
def test_bad_names_are_refused(name, fragment, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    tinybnn.save(golden_model(), tmp_path / "m.pt")
    before = snapshot(tmp_path)
    status, err = run_cli(capsys, "compile", "m.pt", "-o", "out", "--name", name)
    assert_refused(status, err, "--name", fragment)
    assert len(err) < 200
    assert snapshot(tmp_path) == before


def test_longest_name_builds(tmp_path):
    name = "m" * codegen.MAX_NAME
    compile(golden_model(), tmp_path, name)
    build_all(tmp_path, name)


@pytest.mark.parametrize("length", [65, 100_000], ids=["65", "100000"])
def test_long_class_names_are_refused_naming_file_and_class(length, tmp_path, capsys):
    model = golden_model()
    model.class_names = ["tap", "x" * length, "none"]
    tinybnn.save(model, tmp_path / "m.pt")
    status, err = run_cli(capsys, "compile", tmp_path / "m.pt", "-o", tmp_path / "out")
    assert_refused(status, err, f"{tmp_path / 'm.pt'}: class", "64 characters")
    assert len(err) < 300
    assert not (tmp_path / "out").exists()
