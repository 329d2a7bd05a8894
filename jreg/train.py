"""Training as pure functions: jit-compiled steps, epochs under ``lax.scan``, vmapped sweeps.

A training run is described by a :class:`Problem` (init / training loss / prediction /
optimizer, each a function of a hyperparameter dict) and the data. :func:`fit` trains
one model; :func:`sweep` trains the *same* program ``vmap``-ed over seeds and over
hyperparameters that are arrays, in one compiled program, so that
``sweep(...)[h, s] == fit(..., hparams=hp[h], key=key(seeds[s]))``.

Keys: ``jax.random.key(seed)`` is split once into an init key, a data-order key and a
step key. Epoch ``e`` uses the permutation ``permutation(fold_in(order_key, e), N)``;
step ``t`` uses ``fold_in(step_key, t)`` for dropout / augmentation. Every model in a
sweep with the same seed therefore sees the same initialisation and data order
(common random numbers across hyperparameters).

Loop layout: epochs are grouped into *eval periods* of ``eval_every`` epochs (a
``lax.scan`` over epochs, each a ``lax.scan`` over minibatches); after each period the
model is evaluated on the full train and test sets. Periods are grouped into host-side
*segments* (one call of the same compiled function each) so a progress bar can advance
and an early-stopped sweep can return early.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from jreg import _checks, losses, metrics, models, penalties

PyTree = Any
HParams = Mapping[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class Problem:
    """What to train, as pure functions of a hyperparameter dict ``hp``.

    Attributes:
      init: ``(key, hp) -> params``.
      loss: ``(params, x, y, *, key, hp) -> scalar`` training objective on a minibatch
        (data term plus penalties; may use ``key`` for dropout or augmentation).
      predict: ``(params, x, hp) -> logits`` in evaluation mode, ``x`` of shape (N, ...).
      optimizer: ``hp -> optax.GradientTransformation`` (hyperparameters may be traced).
      track: optional ``(params, init_params, hp) -> pytree`` of extra numbers recorded
        at every evaluation (e.g. weight norms, spectral energy).
      evaluate: optional ``(params, data, hp) -> dict`` replacing the default evaluation
        (cross-entropy and accuracy of ``predict`` on the full train and test sets); it must
        return at least ``test_loss`` (early stopping monitors it).
    """

    init: Callable[..., PyTree]
    loss: Callable[..., jax.Array]
    predict: Callable[..., jax.Array]
    optimizer: Callable[[HParams], optax.GradientTransformation]
    track: Callable[..., PyTree] | None = None
    evaluate: Callable[..., dict] | None = None


class TrainState(NamedTuple):
    """Parameters, optimizer state and the number of steps taken (int32 scalar)."""

    params: PyTree
    opt_state: PyTree
    step: jax.Array


class FitResult(NamedTuple):
    """Result of :func:`fit` (or of :func:`sweep`, with leading ``(H, S)`` axes).

    Attributes:
      params: parameters at the end of training (or when early stopping fired).
      best_params: parameters at the lowest held-out loss seen at an evaluation.
      history: dict of arrays with a trailing time axis of length T (number of evals):
        ``epoch``, ``step``, ``train_objective`` (mean minibatch objective over the
        period), ``train_loss``/``train_accuracy`` (clean, eval-mode, full train set),
        ``test_loss``/``test_accuracy`` and ``track`` (the Problem's tracked numbers).
      best_epoch: epoch of ``best_params``.
      stop_epoch: epoch at which training stopped (``num_epochs`` if never stopped).
    """

    params: PyTree
    best_params: PyTree
    history: dict
    best_epoch: jax.Array
    stop_epoch: jax.Array


# ----------------------------------------------------------------------------- problems


def mlp_classifier(
    widths,
    *,
    optimizer: Callable[[HParams], optax.GradientTransformation],
    activation: str = "tanh",
    augment: Callable[..., jax.Array] | None = None,
    init: str = "lecun",
    track: Callable[..., PyTree] | None = None,
    **defaults: float,
) -> Problem:
    """A :class:`Problem` for an MLP classifier with the common regularizers as hparams.

    Hyperparameter keys read from ``hp`` (each falls back to ``defaults`` then 0):

    * ``weight_decay`` λ₂ — penalty ½λ₂‖θ‖² on ALL parameters (biases too), so the
      gradient gains λ₂θ, exactly the reference numpy optimizer's ``lam * W`` term;
    * ``l1`` λ₁ — penalty λ₁‖θ‖₁ (subgradient λ₁·sign θ), on all parameters;
    * ``label_smoothing`` ε — :func:`jreg.losses.cross_entropy` smoothing;
    * ``dropout_rate`` p — dropout on every hidden layer during training.

    Args:
      widths: layer sizes, e.g. ``(784, 128, 10)``.
      optimizer: ``hp -> GradientTransformation``.
      activation: hidden non-linearity.
      augment: optional ``(key, x, hp) -> x`` applied to each training minibatch (it may
        read its own hyperparameters from ``hp``, e.g. a swept augmentation probability).
      init: weight initialisation scheme of :func:`jreg.models.mlp_init`.
      track: optional tracked-metrics function (see :class:`Problem`).
      **defaults: default hyperparameter values.

    Returns:
      A Problem whose ``predict`` is the deterministic (dropout-off) forward pass.
    """
    models.activation_fn(activation)  # validate the name early
    known = {"weight_decay", "l1", "label_smoothing", "dropout_rate"}
    for name, value in defaults.items():
        if name in known:
            _checks.check_nonnegative(name, value)

    def get(hp, name):
        return hp[name] if name in hp else defaults.get(name, 0.0)

    def init_fn(key, hp):
        del hp
        return models.mlp_init(key, widths, init=init)

    def loss_fn(params, x, y, *, key, hp):
        k_aug, k_drop = jax.random.split(key)
        if augment is not None:
            x = augment(k_aug, x, hp)
        logits = models.mlp_apply(
            params,
            x,
            activation=activation,
            dropout_rate=get(hp, "dropout_rate"),
            key=k_drop,
            train=True,
        )
        obj = losses.cross_entropy(logits, y, label_smoothing=get(hp, "label_smoothing"))
        wd, l1 = get(hp, "weight_decay"), get(hp, "l1")
        if not _checks.is_static_zero(wd):
            obj = obj + 0.5 * wd * penalties.l2(params)
        if not _checks.is_static_zero(l1):
            obj = obj + l1 * penalties.l1(params)
        return obj

    def predict_fn(params, x, hp):
        del hp
        return models.mlp_apply(params, x, activation=activation, train=False)

    return Problem(init_fn, loss_fn, predict_fn, optimizer, track)


# ----------------------------------------------------------------------------- steps


def init_state(problem: Problem, key: jax.Array, hp: HParams) -> TrainState:
    """Initial :class:`TrainState` for one model."""
    params = problem.init(key, hp)
    return TrainState(params, problem.optimizer(hp).init(params), jnp.zeros((), jnp.int32))


def make_train_step(problem: Problem, hp: HParams):
    """Return a pure ``(state, batch, key) -> (state, metrics)`` step.

    ``batch`` is ``(x, y)``; metrics hold ``loss``, ``grad_norm``, ``update_norm`` and
    ``param_norm`` (global L2 norms, as big_vision reports them).
    """
    opt = problem.optimizer(hp)

    def step(state: TrainState, batch, key):
        x, y = batch
        loss, grads = jax.value_and_grad(problem.loss)(state.params, x, y, key=key, hp=hp)
        updates, opt_state = opt.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        out = {
            "loss": loss,
            "grad_norm": optax.tree.norm(grads),
            "update_norm": optax.tree.norm(updates),
            "param_norm": optax.tree.norm(params),
        }
        return TrainState(params, opt_state, state.step + 1), out

    return step


class _Carry(NamedTuple):
    state: TrainState
    init_params: PyTree
    best_params: PyTree
    best_loss: jax.Array
    best_epoch: jax.Array
    wait: jax.Array
    stopped: jax.Array
    stop_epoch: jax.Array
    nan_step: jax.Array


@dataclasses.dataclass(frozen=True)
class _Plan:
    num_epochs: int
    batch_size: int
    eval_every: int
    patience: int | None
    steps_per_epoch: int
    periods_per_segment: int
    num_segments: int


def _select(pred, a, b):
    return jax.tree_util.tree_map(lambda u, v: jnp.where(pred, u, v), a, b)


def _evaluate(problem, params, data, hp):
    x_tr, y_tr, x_te, y_te = data
    out = {}
    for name, x, y in (("train", x_tr, y_tr), ("test", x_te, y_te)):
        logits = problem.predict(params, x, hp)
        out[f"{name}_loss"] = losses.cross_entropy(logits, y)
        out[f"{name}_accuracy"] = metrics.accuracy(logits, y)
    return out


def _make_segment(problem: Problem, plan: _Plan):
    """One model: ``(carry, hp, key, data, first_period) -> (carry, history_chunk)``."""

    def segment(carry: _Carry, hp, key, data, first_period):
        order_key, step_key = jax.random.split(jax.random.fold_in(key, 1))
        x_tr, y_tr = data[0], data[1]
        n = x_tr.shape[0]
        step = make_train_step(problem, hp)
        used = plan.steps_per_epoch * plan.batch_size

        def one_step(c, idx):
            state, nan_step = c
            batch = (x_tr[idx], y_tr[idx])
            new_state, m = step(state, batch, jax.random.fold_in(step_key, state.step))
            bad = ~jnp.isfinite(m["loss"]) | ~jnp.isfinite(m["grad_norm"])
            nan_step = jnp.where((nan_step < 0) & bad, state.step, nan_step)
            return (new_state, nan_step), m["loss"]

        def one_epoch(c, epoch):
            perm = jax.random.permutation(jax.random.fold_in(order_key, epoch), n)
            idx = perm[:used].reshape(plan.steps_per_epoch, plan.batch_size)
            c, loss = jax.lax.scan(one_step, c, idx)
            return c, loss.mean()

        def one_period(carry: _Carry, period):
            epochs = period * plan.eval_every + jnp.arange(plan.eval_every)
            (state, nan_step), ep_loss = jax.lax.scan(
                one_epoch, (carry.state, carry.nan_step), epochs
            )
            # Once stopped (early stopping or NaN), the state no longer changes.
            frozen = carry.stopped
            state = _select(frozen, carry.state, state)
            epoch_done = (period + 1) * plan.eval_every
            evaluate = problem.evaluate or functools.partial(_evaluate, problem)
            ev = evaluate(state.params, data, hp)
            improved = (ev["test_loss"] < carry.best_loss) & ~frozen
            best_params = _select(improved, state.params, carry.best_params)
            best_loss = jnp.where(improved, ev["test_loss"], carry.best_loss)
            best_epoch = jnp.where(improved, epoch_done, carry.best_epoch)
            wait = jnp.where(improved, 0, carry.wait + 1)
            stop_now = nan_step >= 0
            if plan.patience is not None:
                stop_now = stop_now | (wait >= plan.patience)
            stopped = frozen | stop_now
            stop_epoch = jnp.where(stop_now & ~frozen, epoch_done, carry.stop_epoch)
            hist = {
                "epoch": jnp.asarray(epoch_done, jnp.int32),
                "step": state.step,
                "train_objective": ep_loss.mean(),
                **ev,
            }
            if problem.track is not None:
                hist["track"] = problem.track(state.params, carry.init_params, hp)
            new = _Carry(
                state,
                carry.init_params,
                best_params,
                best_loss,
                best_epoch,
                wait,
                stopped,
                stop_epoch,
                nan_step,
            )
            return new, hist

        periods = first_period + jnp.arange(plan.periods_per_segment)
        return jax.lax.scan(one_period, carry, periods)

    return segment


def _init_carry(problem: Problem, hp, key, plan: _Plan) -> _Carry:
    init_key = jax.random.fold_in(key, 0)
    state = init_state(problem, init_key, hp)
    return _Carry(
        state=state,
        init_params=state.params,
        best_params=state.params,
        best_loss=jnp.asarray(jnp.inf, jnp.float32),
        best_epoch=jnp.zeros((), jnp.int32),
        wait=jnp.zeros((), jnp.int32),
        stopped=jnp.zeros((), bool),
        stop_epoch=jnp.asarray(plan.num_epochs, jnp.int32),
        nan_step=jnp.asarray(-1, jnp.int32),
    )


def _plan(data, num_epochs, batch_size, eval_every, patience, progress, segments) -> _Plan:
    _checks.check_positive_int("num_epochs", num_epochs)
    _checks.check_positive_int("batch_size", batch_size)
    _checks.check_positive_int("eval_every", eval_every)
    if patience is not None:
        _checks.check_positive_int("patience", patience)
    if num_epochs % eval_every:
        raise ValueError(f"num_epochs={num_epochs} must be a multiple of eval_every={eval_every}.")
    n = data[0].shape[0]
    if batch_size > n:
        raise ValueError(f"batch_size={batch_size} exceeds the {n} training examples.")
    num_periods = num_epochs // eval_every
    if segments is None:
        segments = 20 if progress else 1
    # The smallest periods-per-segment that divides evenly and gives <= `segments` calls,
    # so every host call runs the same compiled program.
    pps = next(
        d
        for d in range(1, num_periods + 1)
        if num_periods % d == 0 and num_periods // d <= max(1, segments)
    )
    return _Plan(
        num_epochs, batch_size, eval_every, patience, n // batch_size, pps, num_periods // pps
    )


def _check_data(data, num_classes_hint=None):
    if len(data) != 4:
        raise ValueError("data must be (x_train, y_train, x_test, y_test).")
    x_tr, y_tr, x_te, y_te = data
    _checks.check_xy(x_tr, y_tr, prefix="train ")
    _checks.check_xy(x_te, y_te, prefix="test ")
    if np.shape(x_tr)[1:] != np.shape(x_te)[1:]:
        raise ValueError(
            f"train x has feature shape {np.shape(x_tr)[1:]} but test x has {np.shape(x_te)[1:]}."
        )
    return tuple(jnp.asarray(a) for a in data)


def _check_hparams(hp: Mapping, *, leading: int | None) -> dict:
    out = {}
    for name, value in hp.items():
        arr = jnp.asarray(value)
        if leading is None and arr.ndim != 0:
            raise ValueError(f"fit needs scalar hyperparameters; {name!r} has shape {arr.shape}.")
        if leading is not None and (arr.ndim != 1 or arr.shape[0] != leading):
            raise ValueError(
                f"sweep hyperparameters must all have shape ({leading},); "
                f"{name!r} has shape {arr.shape}. Use jreg.train.grid for products."
            )
        _checks.check_finite(f"hyperparameter {name!r}", arr)
        if name in ("weight_decay", "l1", "learning_rate", "lr0"):
            _checks.check_nonnegative(name, arr)
        if name in ("label_smoothing", "dropout_rate"):
            _checks.check_unit_interval(name, arr)
        out[name] = arr.astype(jnp.float32) if jnp.issubdtype(arr.dtype, jnp.floating) else arr
    return out


@functools.lru_cache(maxsize=64)
def _compiled(problem: Problem, plan: _Plan, batched: str):
    """Jitted (segment, init) for a problem and loop plan, cached so repeated fits reuse them."""
    segment = _make_segment(problem, plan)
    init = lambda h, k: _init_carry(problem, h, k, plan)
    if batched == "vmap":
        segment = jax.vmap(segment, in_axes=(0, 0, 0, None, None))
        init = jax.vmap(init)
    elif batched == "map":
        seg1, init1 = segment, init
        segment = lambda c, h, k, d, p: jax.lax.map(
            lambda a: seg1(a[0], a[1], a[2], d, p), (c, h, k)
        )
        init = lambda h, k: jax.lax.map(lambda a: init1(*a), (h, k))
    return jax.jit(segment), jax.jit(init)


def _run(problem, data, hp, keys, plan, *, batched: str, progress: bool, desc: str, hp_names):
    """Drive the compiled segment function from the host; ``batched`` in {none, vmap, map}."""
    segment, init = _compiled(problem, plan, batched)
    carry = init(hp, keys)
    chunks = []
    bar = tqdm(total=plan.num_epochs, desc=desc, unit="epoch", disable=not progress, leave=False)
    for s in range(plan.num_segments):
        carry, hist = segment(carry, hp, keys, data, jnp.asarray(s * plan.periods_per_segment))
        chunks.append(hist)
        bar.update(plan.periods_per_segment * plan.eval_every)
        nan_step = np.asarray(carry.nan_step)
        if np.any(nan_step >= 0):
            bar.close()
            flat = np.atleast_1d(nan_step)
            c = int(np.argmin(np.where(flat >= 0, flat, np.iinfo(np.int32).max)))
            first = int(flat[c])
            cfg = ""
            if batched != "none":
                vals = {k: float(np.asarray(v)[c]) for k, v in hp.items() if k in hp_names}
                cfg = f" in sweep config {c} (hparams {vals})"
            raise FloatingPointError(
                f"training produced NaN/inf at step {first}{cfg}; lower the learning rate "
                "or check the data and the loss."
            )
        if plan.patience is not None and bool(np.all(np.asarray(carry.stopped))):
            break
    bar.close()
    axis = 0 if batched == "none" else 1
    history = jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs, axis=axis), *chunks)
    return carry, history


def fit(
    problem: Problem,
    data,
    *,
    key: jax.Array,
    num_epochs: int,
    batch_size: int,
    hparams: Mapping[str, float] | None = None,
    eval_every: int = 1,
    patience: int | None = None,
    progress: bool = False,
    segments: int | None = None,
) -> FitResult:
    """Train one model with minibatch SGD-style updates; epochs run under ``lax.scan``.

    Args:
      problem: what to train (see :class:`Problem`, :func:`mlp_classifier`).
      data: ``(x_train (N, ...), y_train (N,), x_test (M, ...), y_test (M,))``. The test
        split doubles as the validation set for early stopping; pass a validation split
        there if the test set must stay untouched.
      key: PRNG key (``jax.random.key(seed)``).
      num_epochs: passes over the training set; each uses ``N // batch_size`` steps
        (the remainder of the permutation is dropped).
      batch_size: minibatch size B.
      hparams: scalar hyperparameters passed to the Problem's functions.
      eval_every: evaluate on the full train/test sets every this many epochs.
      patience: early stopping (Prechelt 1998): stop after this many evaluations without
        a new lowest held-out loss; ``best_params`` holds the best model.
      progress: show a tqdm bar over epochs.
      segments: number of host calls of the compiled program (default 20 with progress,
        else 1). Results do not depend on it.

    Returns:
      :class:`FitResult` with history arrays of shape (T,), T = num_epochs / eval_every
      (shorter when early stopping ended the run).

    Raises:
      FloatingPointError: naming the first step whose loss or gradient was NaN/inf.
    """
    data = _check_data(data)
    hp = _check_hparams(dict(hparams or {}), leading=None)
    plan = _plan(data, num_epochs, batch_size, eval_every, patience, progress, segments)
    carry, history = _run(
        problem,
        data,
        hp,
        key,
        plan,
        batched="none",
        progress=progress,
        desc="fit",
        hp_names=hp.keys(),
    )
    return FitResult(
        carry.state.params, carry.best_params, history, carry.best_epoch, carry.stop_epoch
    )


def grid(**axes) -> dict[str, jax.Array]:
    """Cartesian product of hyperparameter lists, flattened to shape (H,) each.

    ``grid(lr=[.1, .01], weight_decay=[0, 1e-3])`` gives 4 configs, lr varying slowest.
    """
    names = list(axes)
    mesh = np.meshgrid(*[np.asarray(axes[n], np.float32) for n in names], indexing="ij")
    return {n: jnp.asarray(m.reshape(-1)) for n, m in zip(names, mesh, strict=True)}


def sweep(
    problem: Problem,
    data,
    *,
    seeds,
    hparams: Mapping[str, Any] | None = None,
    num_epochs: int,
    batch_size: int,
    eval_every: int = 1,
    patience: int | None = None,
    progress: bool = True,
    segments: int | None = None,
    strategy: str = "vmap",
    sharding: jax.sharding.Sharding | str | None = "auto",
) -> FitResult:
    """Train every (hyperparameter, seed) pair as one ``vmap``-ed, jit-compiled program.

    Args:
      problem: see :func:`fit`.
      data: see :func:`fit`; shared by all models.
      seeds: ints of shape (S,) (or an int S meaning ``range(S)``).
      hparams: dict of arrays, each of shape (H,) (zipped, not crossed: use :func:`grid`);
        empty or None means H = 1.
      num_epochs, batch_size, eval_every, patience, segments: as in :func:`fit`.
      progress: tqdm bar over epochs (on by default for sweeps).
      strategy: ``"vmap"`` (batched program), ``"map"`` (``lax.map``: one compiled
        program, models run one after another) — same numbers, for benchmarking.
      sharding: how the flattened (H*S,) config axis is laid out on devices.
        ``"auto"`` (default): with one device, nothing; with D > 1 devices, split the
        configs over ``min(D, H*S)`` of them (:func:`config_sharding`), padding the
        config axis with copies of the last config to a multiple of that count (the
        copies are dropped from the result). ``None``: no sharding. Or an explicit
        ``jax.sharding.Sharding``, e.g. ``NamedSharding(Mesh(devices, ("cfg",)),
        P("cfg"))``, padded the same way. Known issue (jax 0.10.2): on several XLA *CPU*
        host devices, a LAPACK custom call (SVD, ``jnp.linalg.norm(w, 2)``, eigh) inside
        the training program deadlocks; use power iteration there or ``sharding=None``.

    Returns:
      :class:`FitResult` whose every leaf has leading axes ``(H, S)``; entry ``[h, s]``
      equals ``fit(problem, data, key=jax.random.key(seeds[s]), hparams={k: v[h]})``.
    """
    _checks.check_choice("strategy", strategy, ("vmap", "map"))
    data = _check_data(data)
    seeds = np.arange(seeds) if isinstance(seeds, int) else np.asarray(seeds)
    if seeds.ndim != 1 or seeds.size == 0 or not np.issubdtype(seeds.dtype, np.integer):
        raise ValueError(f"seeds must be a non-empty 1-D array of ints, got {seeds!r}.")
    hp_in = dict(hparams or {})
    sizes = {np.shape(v)[0] if np.ndim(v) else None for v in hp_in.values()}
    h = sizes.pop() if len(sizes) == 1 else (1 if not sizes else None)
    if h is None:
        raise ValueError(
            "sweep hyperparameters must all have the same shape (H,); got "
            f"{ {k: np.shape(v) for k, v in hp_in.items()} }."
        )
    hp = _check_hparams(hp_in, leading=h)
    plan = _plan(data, num_epochs, batch_size, eval_every, patience, progress, segments)
    s = seeds.size
    # Flatten (H, S) -> C configs: hparams repeat over seeds, keys tile over hparams.
    flat_hp = {k: jnp.repeat(v, s) for k, v in hp.items()}
    keys = jax.vmap(jax.random.key)(jnp.asarray(np.tile(seeds, h), jnp.uint32))
    num_configs = h * s
    if isinstance(sharding, str):
        _checks.check_choice("sharding", sharding, ("auto",))
        n_dev = min(jax.device_count(), num_configs)
        sharding = config_sharding(jax.devices()[:n_dev]) if n_dev > 1 else None
    if sharding is not None:
        n_dev = len(sharding.device_set)
        pad = -num_configs % n_dev
        if pad:  # copies of the last config, dropped again below
            take = jnp.concatenate([jnp.arange(num_configs), jnp.full(pad, num_configs - 1)])
            flat_hp = {k: v[take] for k, v in flat_hp.items()}
            keys = keys[take]
        flat_hp = jax.device_put(flat_hp, sharding)
        keys = jax.device_put(keys, sharding)
    carry, history = _run(
        problem,
        data,
        flat_hp,
        keys,
        plan,
        batched=strategy,
        progress=progress,
        desc=f"sweep {h}x{s}",
        hp_names=hp.keys(),
    )
    unflat = lambda x: x[:num_configs].reshape((h, s) + x.shape[1:])
    res = FitResult(
        carry.state.params, carry.best_params, history, carry.best_epoch, carry.stop_epoch
    )
    return jax.tree_util.tree_map(unflat, res)


def config_sharding(devices=None) -> jax.sharding.NamedSharding:
    """A ``NamedSharding`` that splits the sweep's config axis over ``devices`` (default all).

    On a TPU pod slice call ``jax.distributed.initialize()`` first: ``jax.devices()`` then
    lists every chip of the slice and the same sharding spreads configs over all hosts.
    """
    devices = np.asarray(jax.devices() if devices is None else devices)
    mesh = jax.sharding.Mesh(devices.reshape(-1), ("cfg",))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("cfg"))


def mean_std(x, axis: int = 1):
    """Mean and standard deviation over the seed axis (default 1 for ``(H, S, ...)``)."""
    x = np.asarray(x)
    return x.mean(axis=axis), x.std(axis=axis)
