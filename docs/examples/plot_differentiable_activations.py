"""
=========================================
Activations without a flat region (Eq. 3)
=========================================

Section 5.1 of the paper extends the saturation penalty to differentiable
activations that are nowhere exactly flat. Their complementary function is
``f_c = min(M+ f, M- f)`` (Eq. 3), the smaller of the averages of ``|f'|``
looking right and looking left of ``z``: small where f stays flat over a
stretch on at least one side, and not small at an isolated point where
``|f'|`` touches zero.

This example draws ``f``, ``|f'|`` and ``f_c`` for a Gaussian bump, which is
not monotonic (the paper's Figure 6), and then trains a SATAE-sigmoid on the
2-D curve of the paper's Figure 2.
"""

# %%
# A non-monotonic activation (Figure 6)
# -------------------------------------
# Any vectorised function becomes an activation with
# :meth:`~sksatae.activations.TabulatedActivation.from_function`.
# ``complementary="variation"`` asks for Eq. 3. At the top of the bump
# ``|f'|`` (dashed) is zero, but ``f_c`` stays high there (it even peaks,
# between two shallow minima): the bump is flat at a single point, which is
# no saturation.
import matplotlib.pyplot as plt
import numpy as np

from sksatae import SaturatingAutoEncoder
from sksatae.activations import TabulatedActivation
from sksatae.datasets import make_manifold_2d
from sksatae.plotting import plot_activation, plot_energy_landscape


def gaussian_bump(z):
    return np.exp(-z ** 2 / 2)


bump = TabulatedActivation.from_function(gaussian_bump, name="Gaussian bump",
                                         complementary="variation")
fig, axes = plt.subplots(2, 2, figsize=(9, 5.5), sharex=True, layout="constrained")
plot_activation(bump, ax=axes[:, 0], z_range=(-4, 4))
plot_activation("sigmoid", ax=axes[:, 1], z_range=(-4, 4))
print(f"Gaussian bump at z = 0: |f'| = {abs(bump.derivative(0.0)):.2g}, "
      f"f_c = {bump.complementary(0.0):.3f} (largest f_c: "
      f"{bump.complementary(np.linspace(-4, 4, 801)).max():.3f})")

# %%
# A SATAE-sigmoid on a curve
# --------------------------
# The sigmoid is built in (``activation="sigmoid"``, with Eq. 3's penalty).
# Without the penalty, 10 sigmoid units reconstruct nearly the whole square;
# with it, the well-reconstructed region contracts around the data. The
# penalty is gentle, so the schedule climbs in small steps of 30 epochs each.
X = make_manifold_2d(n_samples=200, random_state=0)
models = [
    SaturatingAutoEncoder(n_components=10, activation="sigmoid", alpha=alpha,
                          alpha_step=0.01, max_iter=30, random_state=0).fit(X)
    for alpha in (0.0, 0.15)
]
fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), layout="constrained")
grid = np.random.RandomState(0).uniform(-1, 1, size=(20_000, 2))
for ax, model in zip(axes, models):
    plot_energy_landscape(model, X, ax=ax, vmax=0.1, resolution=120, show_bases=False)
    share = np.mean(model.energy(grid) < 0.01)
    print(f"alpha={model.alpha_path_[-1]:g}: mean energy on the data "
          f"{model.energy(X).mean():.4f}, share of the square with energy < 0.01: {share:.0%}")
