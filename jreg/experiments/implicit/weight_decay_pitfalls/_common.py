"""What the parts share: the two-moons data, one sweep counted in epochs, its summaries."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from jreg import data, tasks
from jreg.core import streams
from jreg.experiments import kit
from jreg.util import checks


def eval_every(num_epochs: int, evals: int = 10) -> int:
    """Largest divisor of ``num_epochs`` that still gives at least ``evals`` evaluations."""
    return max(
        d
        for d in range(1, num_epochs + 1)
        if num_epochs % d == 0 and num_epochs // d >= min(evals, num_epochs)
    )


def moons(config: dict) -> dict:
    """The two-moons train / test split of parts (a), (a') and (d) (``dead_n``, ``dead_noise``)."""
    x_tr, y_tr, x_te, y_te = data.two_moons(
        checks.seed_key(config["seed"]), config["dead_n"], noise=config["dead_noise"]
    )
    return tasks.split_data(x_tr, y_tr, x_te, y_te)


def sweep(run: kit.Run, task, ds: dict, config: dict, part: str, hparams, eval_epochs=None):
    """One sweep of ``task`` over ``hparams`` x seeds with ``config[part + "_epochs"]``.

    Minibatches of ``config[part + "_batch_size"]``, evaluated every ``eval_epochs`` epochs
    (default :func:`eval_every`). Returns the :class:`jreg.core.train.Result` (NumPy
    history ``(H, S, T)``) and the evaluation steps ``(T,)``.
    """
    epochs = config[f"{part}_epochs"]
    res = run.sweep(
        task, ds, stream=streams.epochs(config[f"{part}_batch_size"]), seeds=config["seeds"],
        epochs=epochs, eval_epochs=eval_epochs or eval_every(epochs), hparams=hparams,
    )  # fmt: skip
    return res, res.history["step"][0, 0]


def arms(history: Mapping, sizes: Mapping[str, int]) -> dict[str, dict]:
    """The history split along its first (hyperparameter) axis into consecutive named arms."""
    ends = np.cumsum([0, *sizes.values()])
    return {
        name: {k: v[a:b] for k, v in history.items()}
        for name, a, b in zip(sizes, ends[:-1], ends[1:], strict=True)
    }


def final(history: Mapping, *keys: str) -> dict:
    """The last evaluation of each of ``keys``, shape ``(H, S)``."""
    return {k: history[k][:, :, -1] for k in keys}


def on_grid(x: np.ndarray, shape: tuple) -> np.ndarray:
    """``(H, ...) -> (*shape, ...)``: a grid sweep's flat hyperparameter axis unfolded."""
    return x.reshape(tuple(shape) + x.shape[1:])
