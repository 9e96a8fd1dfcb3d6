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
