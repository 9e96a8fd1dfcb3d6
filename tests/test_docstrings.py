"""The examples in the docstrings run and print what they claim."""

import doctest
import importlib

import pytest

MODULES = ["sksatae._autoencoder", "sksatae._outlier", "sksatae.activations", "sksatae.datasets"]


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples(module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
