"""The package's public names."""

import subprocess
import sys

import pytest

import sksatae


@pytest.mark.parametrize("name", sksatae.__all__)
def test_every_public_name_resolves(name):
    assert getattr(sksatae, name) is not None
    assert name in dir(sksatae)


def test_unknown_name_raises_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        sksatae.Nope


def test_plain_import_loads_neither_scikit_learn_nor_numba():
    code = "import sys, sksatae; print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'numba', 'scipy'}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _help(capsys, argv):
    from sksatae.__main__ import main

    with pytest.raises(SystemExit) as info:
        main(argv + ["--help"])
    assert info.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("argv", [[], ["demo"], ["reproduce"]])
def test_command_line_help_is_plain_text(capsys, argv):
    text = _help(capsys, argv)
    for markup in ("``", ":func:", ":class:", ":ref:", ":doc:"):
        assert markup not in text


def test_demo_help_describes_every_option(capsys):
    text = _help(capsys, ["demo"])
    assert "shrink, relu, satlinear" in text
    for option, default in (("--n-components N", 64), ("--alpha ALPHA", 0.1),
                            ("--max-iter N", 30)):
        line = text[text.index(f"  {option}"):].split("\n  -")[0]
        assert f"(default: {default})" in " ".join(line.split()), option


def test_reproduce_folders_are_dirs(capsys):
    text = _help(capsys, ["reproduce"])
    assert "--mnist DIR" in text and "--cifar10 DIR" in text
    assert "PATH" not in text


@pytest.mark.parametrize("argv, message", [
    (["demo", "--n-components", "0"],
     "argument --n-components: must be a positive integer, got '0'"),
    (["demo", "--n-components", "2.5"],
     "argument --n-components: must be a positive integer, got '2.5'"),
    (["demo", "--max-iter", "-1"], "argument --max-iter: must be a positive integer, got '-1'"),
    (["demo", "--alpha", "-0.1"], "argument --alpha: must be a non-negative number, got '-0.1'"),
    (["demo", "--alpha", "nan"], "argument --alpha: must be a non-negative number, got 'nan'"),
    (["reproduce", "--out", ""], "argument --out: must name a folder, got an empty string"),
    (["reproduce", "--mnist", ""], "argument --mnist: must name a folder, got an empty string"),
    (["reproduce", "--cifar10", ""],
     "argument --cifar10: must name a folder, got an empty string"),
])
def test_command_line_usage_errors(capsys, argv, message):
    from sksatae.__main__ import main

    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines()[-1] == f"python -m sksatae {argv[0]}: error: {message}"
    assert "Traceback" not in captured.err
