"""
==========================================
Features for a classifier, tuned by search
==========================================

A :class:`~sksatae.SaturatingAutoEncoder` between a scaler and a logistic
regression, in a :class:`~sklearn.pipeline.Pipeline`, with the activation
and the saturation strength chosen by
:class:`~sklearn.model_selection.GridSearchCV` on scikit-learn's 8x8 digits.

The search scores the pipeline's accuracy, the quantity the codes are for.
Scoring the auto-encoder on its own (its ``score`` is minus the mean
reconstruction energy) would always prefer the weakest penalty.
"""

# %%
# The pipeline and the grid
# -------------------------
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sksatae import SaturatingAutoEncoder

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)

pipe = make_pipeline(
    StandardScaler(),
    SaturatingAutoEncoder(n_components=64, max_iter=5, random_state=0),
    LogisticRegression(max_iter=1000),
)
param_grid = {
    "saturatingautoencoder__activation": ["shrink", "relu"],
    "saturatingautoencoder__alpha": [0.0, 0.1, 0.3],
}
search = GridSearchCV(pipe, param_grid, cv=3).fit(X_train, y_train)

# %%
# Results
# -------
results = pd.DataFrame(search.cv_results_)[
    ["param_saturatingautoencoder__activation", "param_saturatingautoencoder__alpha",
     "mean_test_score", "std_test_score", "mean_fit_time"]
].rename(columns=lambda name: name.replace("param_saturatingautoencoder__", ""))
print(results.sort_values("mean_test_score", ascending=False).to_string(index=False))

print(f"\nbest: {search.best_params_}")
print(f"test accuracy of the refitted best pipeline: {search.score(X_test, y_test):.3f}")

# %%
# The codes themselves
# --------------------
# The fitted auto-encoder is a step of the best pipeline; its codes are what
# the classifier sees. Shrink codes inside the dead zone ``[-shrink_width,
# shrink_width]`` are exactly zero, and a larger ``alpha`` makes more of them
# zero. On these small images the scores of the settings differ by about
# their standard deviations across folds: the search says which settings are
# good enough, more than which single one is best.
best_autoencoder = search.best_estimator_.named_steps["saturatingautoencoder"]
codes = search.best_estimator_[:-1].transform(X_test)
print(f"codes: {codes.shape}, share of zeros: {(codes == 0).mean():.1%}, "
      f"alpha stages: {best_autoencoder.alpha_path_}")
