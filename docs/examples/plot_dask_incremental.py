"""
==============================
Incremental training with Dask
==============================

Train a :class:`~sksatae.SaturatingAutoEncoder` on a chunked Dask array
with :meth:`~sksatae.SaturatingAutoEncoder.partial_fit`, one block at a
time, driven by dask-ml's ``Incremental``, then compute codes and scores
block by block. Everything runs on a small in-process cluster here; on a
real one only the ``Client`` changes. See :doc:`/scaling` for the caveats.

``partial_fit`` runs one epoch at the current ``alpha`` with no schedule, so
the alpha schedule is followed by hand: raise ``alpha`` on the fitted
estimator between passes.
"""

# %%
# A cluster and a chunked array
# -----------------------------
# Standardised digits, split into blocks of rows (every block holds all the
# columns). The rows are shuffled first so that the first block, which fixes
# the centring and the step of SGD, is representative.
import dask.array as da
import numpy as np
from distributed import Client
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler

from sksatae import SaturatingAutoEncoder

client = Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None)

X, _ = load_digits(return_X_y=True)
X = StandardScaler().fit_transform(X)[np.random.RandomState(0).permutation(len(X))]
X_dask = da.from_array(X, chunks=(300, X.shape[1]))
print(X_dask)

# %%
# Training block by block
# -----------------------
# ``Incremental.partial_fit`` calls the estimator's ``partial_fit`` on each
# block in turn. dask-ml is optional here: without it, the same passes are
# a loop over the blocks.
try:
    from dask_ml.wrappers import Incremental
except ImportError:
    Incremental = None

autoencoder = SaturatingAutoEncoder(n_components=32, alpha=0.0, random_state=0)
schedule = [0.0, 0.1, 0.2]
passes_per_alpha = 3

if Incremental is not None:
    incremental = Incremental(autoencoder, shuffle_blocks=True, random_state=0)
    for alpha in schedule:
        if hasattr(incremental, "estimator_"):
            incremental.estimator_.set_params(alpha=alpha)
        for _ in range(passes_per_alpha):
            incremental.partial_fit(X_dask)
    model = incremental.estimator_
else:
    model = autoencoder
    blocks = X_dask.to_delayed().ravel()
    for alpha in schedule:
        model.set_params(alpha=alpha)
        for _ in range(passes_per_alpha):
            for block in blocks:
                model.partial_fit(block.compute())

alphas, epochs = np.unique(model.alpha_path_, return_counts=True)
print(f"epochs in all (one per block and pass): {model.n_iter_}")
for alpha, count in zip(alphas, epochs):
    print(f"  alpha={alpha:g}: {count} epochs")

# %%
# Inference block by block
# ------------------------
# ``map_blocks`` with the output chunks given explicitly, so that the lazy
# array has the right shape before it is computed.
codes = X_dask.map_blocks(
    model.transform, chunks=(X_dask.chunks[0], (model.n_components,)), dtype=X_dask.dtype
)
scores = X_dask.map_blocks(model.score_samples, drop_axis=1, dtype=X_dask.dtype)
print(f"codes: {codes.shape}, share of zeros: {float((codes == 0).mean().compute()):.1%}")
print(f"mean score: {float(scores.mean().compute()):.3f}  (in memory: {model.score(X):.3f})")

client.close()
