"""Memory that ``partial_fit`` keeps from one call to the next.

A call at thousands of features and large batches allocates tens of
megabytes: the epoch's buffers and a working copy of the weights. Freed at
the end of the call, that memory goes back to the operating system, and the
next call's first writes fault every page in again, a cost that varied by up
to half an epoch from call to call on a virtual machine
(``docs/performance_log.md``, "Memory kept between `partial_fit` calls").

So each thread keeps, for the next ``partial_fit`` it runs:

- the epoch buffers of its last call, for a call of the same shapes;
- the weight arrays that call replaced in the model, once nothing else
  references them: the next call copies the model's weights into them
  rather than into new memory.

At most one such set per thread, handed from model to model, and released
when the model that last used it is garbage collected. ``fit`` keeps
nothing: its buffers last for the whole call anyway. Nothing here is part of
a model's state: pickles, clones and copies never see it.
"""

import sys
import threading
import weakref

import numpy as np

from ._parts import CACHE_LINE, aligned_copy

_THREAD_LOCAL = threading.local()

# A reference count tells whether anything else holds an array only where the
# GIL makes the count exact; without it, spare weights are never reused.
_COUNTS_EXACT = (sys.implementation.name == "cpython"
                 and getattr(sys, "_is_gil_enabled", lambda: True)())


class Scratch:
    """Epoch buffers and spare weight arrays, for one training call at a time.

    A fresh ``Scratch()`` serves one call (``fit``); ``kept_for(model)``
    gives the calling thread's, which outlives the call."""

    def __init__(self):
        self._key = None
        self._workspaces = {}  # by number of parts
        self._spares = []
        self._owner_finalizer = None

    def workspace(self, key, n_parts, allocate):
        """The buffers for ``key`` (whatever determines their shapes) and
        ``n_parts``: those of an earlier call if the key is the same, else
        ``allocate()``'s, kept for the next call (with those of one other
        number of parts at most)."""
        if key != self._key:
            self._key, self._workspaces = key, {}
        workspace = self._workspaces.pop(n_parts, None)
        if workspace is None:
            workspace = allocate()
        # The last two counts of parts only: "timed" alternates between one and several.
        self._workspaces = {**dict(list(self._workspaces.items())[-1:]), n_parts: workspace}
        return workspace

    def copy(self, array, dtype):
        """A copy of ``array`` in ``dtype`` starting at a cache line, made in
        a spare array when one of its shape and dtype is free."""
        spares, self._spares = self._spares, []
        while spares:
            spare = spares.pop()
            if (spare.shape == array.shape and spare.dtype == dtype
                    and _unshared(spare)):
                spare[...] = array
                self._spares = spares
                return spare
        return aligned_copy(array, dtype)

    def retire(self, *arrays):
        """Keep ``arrays``, which a model no longer uses, as spares (the last
        two: an encoder and a decoder)."""
        self._spares = (self._spares + [a for a in arrays if a is not None])[-2:]

    def release(self):
        self._key, self._workspaces, self._spares = None, {}, []

    def _hold_for(self, model):
        held = self._owner_finalizer.peek() if self._owner_finalizer is not None else None
        if held is not None:
            if held[0] is model:
                return
            self._owner_finalizer.detach()
        self._owner_finalizer = weakref.finalize(model, self.release)


def kept_for(model):
    """The calling thread's ``Scratch``, now held for ``model``: released when
    ``model`` is garbage collected, unless another model takes it over."""
    scratch = getattr(_THREAD_LOCAL, "scratch", None)
    if scratch is None:
        scratch = _THREAD_LOCAL.scratch = Scratch()
    scratch._hold_for(model)
    return scratch


def _unshared(array):
    """Whether ``array`` may be overwritten: writeable, contiguous, at a cache
    line, and referenced by the caller's one variable only, with no other
    array viewing its memory."""
    if not (_COUNTS_EXACT and array.flags.c_contiguous and array.flags.writeable
            and array.ctypes.data % CACHE_LINE == 0):
        return False
    # Counted: the caller's variable, this function's argument, getrefcount's.
    if sys.getrefcount(array) != 3:
        return False
    base = array.base
    if base is None:
        return True
    # A view of the array (a row, a transpose) references the memory's owner,
    # not the array: the owner must be referenced by the array alone (counted:
    # ``array.base``, ``base``, getrefcount's argument).
    return (isinstance(base, np.ndarray) and base.base is None
            and sys.getrefcount(base) == 3)
