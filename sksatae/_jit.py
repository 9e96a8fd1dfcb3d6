"""The one place where numba options for the whole package are set.

Kernels are compiled lazily, on first call, in nopython mode without fastmath
unless a kernel asks for named flags (``jit(fastmath=...)``).
Compiled code is cached on disk unless ``SKSATAE_NUMBA_CACHE=0``. When no
cache location is writable (a read-only install with no writable user cache
directory), numba refuses ``cache=True`` at decoration time; we then compile
without a cache instead of failing at import.

With ``NUMBA_DISABLE_JIT=1`` numba returns every kernel uncompiled, to run as
plain Python (slowly); ``_blas`` supplies the one piece, the BLAS call, that
only exists in compiled code.
"""

import os
import warnings

import numba

CACHE_ENV_VAR = "SKSATAE_NUMBA_CACHE"
_warned = []


def cache_enabled():
    """Whether on-disk caching of compiled kernels is requested."""
    value = os.environ.get(CACHE_ENV_VAR, "1").strip().lower()
    return value not in ("0", "false", "no", "off", "")


def jit(function=None, *, fastmath=False):
    """Compile ``function`` lazily with the package's numba options.

    ``fastmath`` is numba's: False or a set of LLVM flags; used as
    ``@jit(fastmath={...})`` for the few loops whose speed needs one.
    """
    if function is None:
        return lambda function: jit(function, fastmath=fastmath)
    options = dict(nopython=True, nogil=True, fastmath=fastmath, error_model="numpy")
    if cache_enabled():
        try:
            return numba.jit(cache=True, **options)(function)
        except RuntimeError as exc:  # "cannot cache function ...: no locator available"
            if not _warned:
                _warned.append(True)
                warnings.warn(
                    f"sksatae: numba cannot cache compiled kernels ({exc}); compiling without "
                    f"a cache. Set {CACHE_ENV_VAR}=0 to silence this, or NUMBA_CACHE_DIR to a "
                    "writable folder to keep a cache.",
                    RuntimeWarning,
                    stacklevel=2,
                )
    return numba.jit(cache=False, **options)(function)
