"""The one place where numba options for the whole package are set.

Kernels are compiled lazily, on first call, in nopython mode without fastmath
unless a kernel asks for named flags (``jit(fastmath=...)``).
Helpers that only compiled code calls are ``subroutine``s: compiled into
each caller, with no entry point, machine code or cache entry of their own.
No function gets numba's C-callable wrapper, which only a compiled function
passed as an argument to another would use: a cold first fit would compile
nine of them, about 0.2 s.
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
from numba.extending import register_jitable

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
    options = dict(nopython=True, nogil=True, fastmath=fastmath, error_model="numpy",
                   no_cfunc_wrapper=True)
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


def subroutine(function=None, *, fastmath=False):
    """Compile ``function`` only as part of the compiled functions that call it.

    For the kernels' helpers. A ``jit`` function is compiled into a library
    of its own, with a wrapper that converts Python arguments, machine code
    and a cache entry; its callers then link its code in and optimise it
    again. A helper that only compiled code calls needs none of those: its
    code lives in its callers' libraries and cache entries. Called from
    Python, ``function`` runs uncompiled.
    """
    if function is None:
        return lambda function: subroutine(function, fastmath=fastmath)
    return register_jitable(nogil=True, fastmath=fastmath, error_model="numpy",
                            no_cfunc_wrapper=True)(function)
