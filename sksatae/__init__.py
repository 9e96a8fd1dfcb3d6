"""Saturating Auto-Encoders (Goroshin & LeCun, ICLR 2013) for scikit-learn.

Names are imported on first use, so ``import sksatae`` stays cheap; the
scikit-learn import behind the estimator happens when it is first accessed.
"""

import importlib

__version__ = "0.1.0"

_LAZY = {
    "SaturatingAutoEncoder": "._autoencoder",
    "DivergenceError": "._autoencoder",
    "SATAEOutlierDetector": "._outlier",
}
_SUBMODULES = ("activations", "datasets", "plotting")

__all__ = [*_LAZY, *_SUBMODULES, "__version__"]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
