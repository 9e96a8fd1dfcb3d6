"""
=================================
Filters learned on natural images
=================================

A SATAE-shrink trained on 8x8 grayscale patches cut from the two
photographs bundled with scikit-learn, as in the paper's Figure 4 (c). With
the saturation penalty, an L1 penalty on the codes for the shrink, the
decoder basis elements become oriented gratings and edges (with so
short a training they do not localise: see the reproduction notes, Finding
3).

The paper uses 12x12 patches, 100 or 300 elements and 30 epochs per alpha
stage; this example uses smaller settings so that it runs in seconds.
"""

# %%
# Data and model
# --------------
# :func:`~sksatae.datasets.load_natural_patches` returns the patches already
# standardised per pixel. ``keep_stage_components=True`` keeps the basis at
# the end of every alpha stage, for the last figure.
import numpy as np

from sksatae import SaturatingAutoEncoder
from sksatae.datasets import load_natural_patches
from sksatae.plotting import plot_alpha_path, plot_components

X = load_natural_patches(patch_size=8, n_patches=10_000, random_state=0)

model = SaturatingAutoEncoder(
    n_components=49, activation="shrink", alpha=0.6, alpha_step=0.2, max_iter=20,
    keep_stage_components=True, random_state=0,
).fit(X)
print(f"alpha stages: {model.alpha_path_}, epochs: {model.n_iter_}, "
      f"step: {model.learning_rate_:.4f}")

# %%
# The decoder basis
# -----------------
# Each tile is one row of ``components_``, scaled by its largest absolute
# value (0 is mid-gray). Tiles are ordered by how often their unit is active
# on the data, most active first.
codes = model.transform(X)
activity = np.mean(codes != 0, axis=0)
print(f"share of non-zero codes: {np.mean(codes != 0):.1%}")
fig = plot_components(model, image_shape=(8, 8), order=np.argsort(-activity))

# %%
# One filter as alpha grows
# -------------------------
# One element at the end of each stage (the paper's Figure 5): the most
# active among those that are not close to a constant patch (the cosine of
# the angle between a unit-norm element and the constant patch is
# ``sum(element) / 8``). It starts from a random vector at ``alpha=0`` and
# takes shape as the penalty grows.
cosine_to_constant = np.abs(model.components_.sum(axis=1)) / 8
candidates = np.flatnonzero(cosine_to_constant < 0.5)
index = int(candidates[np.argmax(activity[candidates])])
fig = plot_alpha_path(model, index=index, image_shape=(8, 8))
