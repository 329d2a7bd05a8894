"""jreg.experiments.kit: quick overrides, epoch-counted sweeps, checkpoint folders, summaries."""

import numpy as np
import optax
import pytest

from jreg import tasks
from jreg.core import streams, train
from jreg.experiments import kit
from jreg.nn import nets


def test_sized_applies_only_known_quick_overrides():
    full = {"seeds": 5, "num_epochs": 100}
    assert kit.sized(False, full, quick_overrides={"seeds": 2}) == full
    assert kit.sized(True, full, quick_overrides={"seeds": 2}) == {"seeds": 2, "num_epochs": 100}
    with pytest.raises(ValueError, match="unknown config keys"):
        kit.sized(True, full, quick_overrides={"sedes": 2})


def _problem():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    task = tasks.supervised(
        nets.mlp((3, 8, 2)), optimizer=optax.sgd(0.1), regularizers={"wd": tasks.HALF_L2}
    )
    return task, tasks.split_data(x, y, x, y)


def test_run_sweep_counts_epochs_and_equals_the_core_sweep(tmp_path):
    task, ds = _problem()
    stream = streams.epochs(10)  # 4 steps per epoch
    hp = {"wd": np.array([0.0, 0.1], np.float32)}
    run = kit.Run(checkpoint_dir=str(tmp_path))
    res = run.sweep(task, ds, stream=stream, seeds=2, epochs=6, eval_epochs=2, hparams=hp)
    ref = train.sweep(
        task, ds, stream=stream, seeds=2, num_steps=24, eval_every=8, hparams=hp, progress=False
    )
    assert isinstance(res.history["test_loss"], np.ndarray)
    np.testing.assert_array_equal(res.history["test_loss"], np.asarray(ref.history["test_loss"]))
    np.testing.assert_array_equal(res.history["epoch"][0, 0], [2, 4, 6])
    # each sweep of a run gets its own numbered checkpoint folder
    run.sweep(task, ds, stream=stream, seeds=1, epochs=2, eval_epochs=2)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert [n[:4] for n in names] == ["000-", "001-"]
    assert kit.QUIET.folder("x") is None  # a direct call never checkpoints
    with pytest.raises(ValueError, match="epochs and eval_epochs"):
        run.sweep(task, ds, stream=stream, seeds=1, epochs=2, num_steps=8)


def test_summaries():
    assert kit.mean_std([1.0, 3.0], ".1f") == "2.0 ± 1.0"
    lo, hi = kit.bootstrap_ci(np.arange(10.0), num=500)
    assert lo < 4.5 < hi and hi - lo < 5
    assert kit.bootstrap_ci(np.full(5, 2.0)) == (2.0, 2.0)
    assert kit.verdict(0.97, 0.98, tol=0.02) == "agrees"
    assert kit.verdict(0.90, 0.98, tol=0.02) == "worse"
    assert kit.verdict(0.10, 0.20, tol=0.02, higher_is_better=False) == "better"


def test_panels_hides_unused_cells():
    fig, axes = kit.panels(5, ncols=3)
    assert len(axes) == 5 and sum(ax.get_visible() for ax in fig.axes) == 5
    kit.seeds_errorbar(axes[0], [1, 2], np.ones((2, 3)))
