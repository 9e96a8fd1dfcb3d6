"""Progress of a fit: a tqdm bar when tqdm is installed, plain lines otherwise.

``verbose=0`` prints nothing; ``verbose=1`` shows one bar over all epochs (or,
without tqdm, one line per alpha stage); ``verbose>=2`` prints one line per
epoch. Everything goes to standard error.
"""

import sys
import time


class TrainingProgress:
    """Report stage, epoch and loss while an estimator trains."""

    def __init__(self, verbose, n_stages, epochs_per_stage, name):
        self.verbose = verbose
        self.n_stages = n_stages
        self.epochs = epochs_per_stage
        self.name = name
        self.started = time.perf_counter()
        self.bar = None
        if verbose == 1:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                pass
            else:
                self.bar = tqdm(total=n_stages * epochs_per_stage, desc=name, unit="epoch",
                                file=sys.stderr, dynamic_ncols=True, leave=True)

    def _line(self, stage_index, alpha, epoch, loss):
        elapsed = time.perf_counter() - self.started
        print(f"[{self.name}] stage {stage_index + 1}/{self.n_stages} alpha={alpha:.4g} "
              f"epoch {epoch + 1}/{self.epochs} loss={loss:.6g} ({elapsed:.1f}s)",
              file=sys.stderr, flush=True)

    def epoch_done(self, stage_index, alpha, epoch, loss):
        if self.bar is not None:
            self.bar.set_postfix_str(
                f"stage {stage_index + 1}/{self.n_stages}, alpha={alpha:.4g}, loss={loss:.5g}",
                refresh=False)
            self.bar.update(1)
        elif self.verbose >= 2 or (self.verbose == 1 and epoch + 1 == self.epochs):
            self._line(stage_index, alpha, epoch, loss)

    def close(self):
        if self.bar is not None:
            self.bar.close()
