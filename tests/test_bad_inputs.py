"""The bad inputs users actually send, one row each: every one is a clear error.

Rows marked (probe) come from the new-user trial of issue 11; the CLI rows (``--seeds 0``,
``--out FILE``, ``--only`` without names, ``--set nope=1``) are in ``test_runner.py``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jreg import data, tasks
from jreg.analysis import linear, metrics
from jreg.core import streams, train
from jreg.nn import models, nets
from jreg.regularizers import losses, transforms
from jreg.util import checks

pytestmark = pytest.mark.standard_promotion

X = np.asarray(np.random.default_rng(0).normal(size=(32, 3)), np.float32)
Y = np.asarray(np.arange(32) % 3, np.int32)


def _task():
    return tasks.supervised(
        nets.mlp((3, 4, 3)),
        optimizer=optax.sgd(0.1),
        regularizers={"weight_decay": tasks.HALF_L2},
        hparams={"dropout_rate": 0.0},
    )


def _fit(x=X, y=Y, xt=X, yt=Y, hparams=None, **kw):
    kw = {"stream": streams.epochs(8), "seed": 0, "num_steps": 4, "eval_every": 4, **kw}
    return train.fit(_task(), tasks.split_data(x, y, xt, yt), hparams=hparams, **kw)


def _sweep(hparams, seeds=1):
    ds = tasks.split_data(X, Y, X, Y)
    return train.sweep(
        _task(),
        ds,
        stream=streams.epochs(8),
        seeds=seeds,
        hparams=hparams,
        num_steps=4,
        eval_every=4,
        progress=False,
    )


def _with(a, i, v):
    a = a.copy()
    a[i] = v
    return a


def _transform_update(tx):
    p = {"w": jnp.ones((2, 2))}
    return tx.update(p, tx.init(p), None)


def _toy(step=None, evaluate=None):
    """A one-weight task on a generated stream (no data)."""
    step = step or (lambda s, b, k, hp: (s + 1.0, {"s": s}))
    evaluate = evaluate or (lambda s, d, hp: {"test_loss": s})
    return train.Task(lambda k, hp: jnp.zeros(()), step, evaluate, name="toy")


def _fit_toy(task, **kw):
    kw = {"num_steps": 8, "eval_every": 2, **kw}
    return train.fit(task, {}, stream=streams.generated(lambda k, t: {}), seed=3, **kw)


ROWS = [
    # (id, call, error type, message fragment)
    (
        "test label out of range (probe)",
        lambda: _fit(yt=_with(Y, 0, 3)),
        ValueError,
        "test y has label 3 outside [0, 3)",
    ),
    (
        "train label out of range (probe)",
        lambda: _fit(y=_with(Y, 0, 7)),
        ValueError,
        "train y has label 7 outside [0, 3)",
    ),
    ("negative label", lambda: _fit(y=_with(Y, 0, -1)), ValueError, "negative label -1"),
    ("float labels", lambda: _fit(y=Y.astype(np.float32)), TypeError, "integer class labels"),
    ("bool labels", lambda: _fit(y=Y % 2 == 0), TypeError, "integer class labels"),
    ("NaN in x", lambda: _fit(x=_with(X, (0, 0), np.nan)), ValueError, "NaN/inf"),
    ("inf in test x", lambda: _fit(xt=_with(X, (1, 1), np.inf)), ValueError, "NaN/inf"),
    ("empty test set (probe)", lambda: _fit(xt=X[:0], yt=Y[:0]), ValueError, "test split is empty"),
    (
        "x and y lengths differ",
        lambda: _fit(y=Y[:-1]),
        ValueError,
        "examples but train['x'] has 32",
    ),
    ("batch larger than N", lambda: _fit(stream=streams.epochs(64)), ValueError, "exceeds the 32"),
    (
        "misspelled hparam (probe)",
        lambda: _fit(hparams={"weight_decy": 0.1}),
        ValueError,
        "declares ['dropout_rate'",
    ),
    (
        "fit(hparams={'dropout': .9}) (probe)",
        lambda: _fit(hparams={"dropout": 0.9}),
        ValueError,
        "unknown hyperparameter(s) ['dropout']",
    ),
    (
        "hparam arrays of different lengths",
        lambda: _sweep({"weight_decay": [0, 1], "dropout_rate": [0.1, 0.2, 0.3]}),
        ValueError,
        "one common length",
    ),
    (
        "negative weight decay",
        lambda: _sweep({"weight_decay": [-1.0]}),
        ValueError,
        "weight_decay must lie in [0.0, inf)",
    ),
    (
        "dropout rate 1 in a sweep",
        lambda: _sweep({"dropout_rate": [1.0]}),
        ValueError,
        "dropout_rate must lie in [0.0, 1.0)",
    ),
    (
        "a value outside the bounds a custom task declares",
        lambda: train.sweep(
            train.Task(
                lambda k, hp: {},
                lambda s, b, k, hp: (s, {}),
                lambda s, d, hp: {},
                hparams={"temperature": 1.0},
                bounds={"temperature": (0.5, 2.0)},
            ),
            {},
            stream=streams.generated(lambda k, t: {}),
            seeds=1,
            num_steps=1,
            eval_every=1,
            hparams={"temperature": [1.0, 2.0]},
            progress=False,
        ),
        ValueError,
        "temperature must lie in [0.5, 2.0)",
    ),
    (
        "seed 2**32 (probe: uint32 wrap)",
        lambda: _sweep(None, seeds=[0, 2**32]),
        ValueError,
        "[0, 2**32)",
    ),
    ("seeds=0", lambda: _sweep(None, seeds=0), ValueError, "seeds"),
    (
        "data seed 2**40 (issue 18: wrapped to seed 0)",
        lambda: checks.seed_key(2**40),
        ValueError,
        "seed must be an int in [0, 2**32), got 1099511627776",
    ),
    ("negative data seed", lambda: checks.seed_key(-1, "data_seed"), ValueError, "data_seed"),
    ("float seed", lambda: checks.seed_key(1.5), ValueError, "got 1.5"),
    (
        "dropout rate outside [0, 1)",
        lambda: models.dropout(X, 1.5, key=jax.random.key(0), train=True),
        ValueError,
        "dropout rate",
    ),
    (
        "label smoothing outside [0, 1)",
        lambda: losses.cross_entropy(
            jnp.zeros((2, 3)), jnp.zeros(2, jnp.int32), label_smoothing=-0.1
        ),
        ValueError,
        "smoothing",
    ),
    (
        "probabilities that do not sum to 1",
        lambda: metrics.expected_calibration_error(jnp.full((4, 3), 0.5), jnp.zeros(4, jnp.int32)),
        ValueError,
        "sum to 1",
    ),
    (
        "num_bins < 1",
        lambda: metrics.expected_calibration_error(
            jnp.full((4, 2), 0.5), jnp.zeros(4, jnp.int32), num_bins=0
        ),
        ValueError,
        "num_bins",
    ),
    (
        "proximal_l1 without params",
        lambda: _transform_update(transforms.proximal_l1(0.1, 0.1)),
        ValueError,
        "params",
    ),
    (
        "weight decay without params",
        lambda: _transform_update(transforms.decoupled_weight_decay(0.1)),
        ValueError,
        "params",
    ),
    ("unknown dataset", lambda: data.load("mnistt"), ValueError, "mnistt"),
    (
        "monitored metric inf at every evaluation (issue 18: best_step stayed 0)",
        lambda: _fit_toy(
            _toy(evaluate=lambda s, d, hp: {"test_loss": s + jnp.inf}),
            monitor="test_loss",
            patience=3,
        ),
        FloatingPointError,
        "NaN/inf (a step metric or the monitored metric) at step 2 in config (h=0, s=0): seed 3",
    ),
    (
        "monitored metric NaN after 4 steps",
        lambda: _fit_toy(
            _toy(evaluate=lambda s, d, hp: {"acc": jnp.where(s >= 4, jnp.nan, s)}),
            monitor="acc",
            mode="max",
        ),
        FloatingPointError,
        "at step 4 in config",
    ),
    (
        "step returns a bare scalar (issue 18: unhashable tracer)",
        lambda: _fit_toy(_toy(step=lambda s, b, k, hp: s + 1.0)),
        ValueError,
        "Task.step of 'toy' must return (state, metrics) with metrics a dict",
    ),
    (
        "step returns (state, scalar metric)",
        lambda: _fit_toy(_toy(step=lambda s, b, k, hp: (s + 1.0, s))),
        ValueError,
        "second entry is DynamicJaxprTracer",
    ),
    (
        "evaluate returns a scalar",
        lambda: _fit_toy(_toy(evaluate=lambda s, d, hp: s)),
        ValueError,
        "Task.evaluate of 'toy' must return a dict of metrics",
    ),
    (
        "lasso with NaN in x (issue 18: all zeros, looked converged)",
        lambda: linear.lasso(_with(X, (2, 1), np.nan), X[:, 0], 0.1),
        ValueError,
        "x contains 1 NaN/inf value(s)",
    ),
    (
        "ridge with NaN in y (issue 18: NaN coefficients)",
        lambda: linear.ridge(X, _with(X[:, 0], 3, np.nan), 1.0),
        ValueError,
        "y contains 1 NaN/inf value(s)",
    ),
    (
        "ridge with negative alpha",
        lambda: linear.ridge(X, X[:, 0], -1.0),
        ValueError,
        "alpha must be >= 0",
    ),
    (
        "elastic net l1_ratio=2",
        lambda: linear.elastic_net(X, X[:, 0], 0.1, 2.0),
        ValueError,
        "l1_ratio must lie in [0, 1]",
    ),
    (
        "lasso with a negative penalty factor",
        lambda: linear.lasso(X, X[:, 0], 0.1, penalty_factor=np.array([1.0, -1.0, 1.0])),
        ValueError,
        "penalty_factor must be >= 0",
    ),
    (
        "alpha_max with l1_ratio=0",
        lambda: linear.alpha_max(X, X[:, 0], 0.0),
        ValueError,
        "l1_ratio must be finite and > 0",
    ),
    ("patience without a monitor", lambda: _fit(patience=2), ValueError, "patience needs a metric"),
    (
        "monitor that is not evaluated",
        lambda: _fit(monitor="val_loss"),
        ValueError,
        "not an evaluated metric",
    ),
    (
        "eval_every not a whole epoch",
        lambda: _fit(eval_every=3, num_steps=6),
        ValueError,
        "multiple of the stream's block",
    ),
]


@pytest.mark.parametrize("call, error, match", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_bad_input_is_a_clear_error(call, error, match):
    with pytest.raises(error) as exc:
        call()
    assert match in str(exc.value)


def test_unprepared_tfds_dataset_never_touches_the_network(tmp_path, monkeypatch):
    import socket

    def no_network(*a, **k):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "create_connection", no_network)
    import glob
    import tempfile

    before = len(glob.glob(f"{tempfile.gettempdir()}/tmp*tfds"))
    with pytest.raises(data.DatasetNotPreparedError, match="tfds build"):
        data.tfds_dataset("fashion_mnist", data_dir=str(tmp_path))
    # (probe) no empty /tmp/tmp...tfds folder is left behind
    assert len(glob.glob(f"{tempfile.gettempdir()}/tmp*tfds")) == before


def test_vector_step_metrics_are_averaged_per_element_over_the_period():
    # issue 18: a (3,) step metric used to be averaged into one scalar.
    vec = lambda s, b, k, hp: (s + 1.0, {"vec": s * jnp.arange(3.0), "s": s})
    res = _fit_toy(_toy(step=vec))
    # steps 0..7 see s = 0..7; periods of 2 steps: mean s = 0.5, 2.5, 4.5, 6.5
    np.testing.assert_allclose(res.history["s"], [0.5, 2.5, 4.5, 6.5])
    assert res.history["vec"].shape == (4, 3)
    np.testing.assert_allclose(res.history["vec"], np.outer([0.5, 2.5, 4.5, 6.5], [0, 1, 2]))
    assert res.history["test_loss"].shape == (4,)


def test_nan_in_an_unmonitored_evaluation_metric_is_recorded_not_raised():
    # An evaluation metric may be undefined (e.g. mode_coverage's kl); only the
    # monitored one must be finite.
    res = _fit_toy(
        _toy(evaluate=lambda s, d, hp: {"kl": s + jnp.nan, "test_loss": s}), monitor="test_loss"
    )
    assert np.isnan(res.history["kl"]).all() and int(res.best_step) == 2


def test_linear_checks_skip_traced_inputs():
    # Inside vmap alpha and y are tracers: no value checks (and no error), same numbers.
    ys = np.stack([X[:, 0], X[:, 1]], 1)
    fits = jax.vmap(lambda y: linear.ridge(X, y, 1.0), in_axes=1)(ys)
    np.testing.assert_allclose(fits.coef[1], linear.ridge(X, X[:, 1], 1.0).coef, rtol=1e-5)
    coef = jax.vmap(lambda a: linear.lasso(X, X[:, 0], a).coef)(jnp.array([0.01, 0.1]))
    np.testing.assert_allclose(coef[1], linear.lasso(X, X[:, 0], 0.1).coef, rtol=1e-5)
