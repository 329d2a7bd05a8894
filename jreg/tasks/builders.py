"""Task builders: supervised learning with named, hyperparameter-weighted regularizers.

:func:`supervised` turns a :class:`jreg.nn.nets.Model` (or a flax linen module), a loss, an
optimizer and named penalties into a :class:`jreg.core.train.Task`. Data is a dict of splits,
each a dict of arrays with a leading example axis: ``{"train": {"x", "y"}, "test": {"x",
"y"}}`` (:func:`split_data` builds it). The task's state is ``{"params", "opt_state",
"model_state"}`` (plus ``"init_params"`` with ``keep_init``).

The training objective at a step is ``loss(out, target) + Σ_r hp[r] · penalty_r(params,
batch, aux)``; each regularizer name is a declared hyperparameter (default 0 unless
given), and a regularizer whose weight is an unswept 0 is not computed at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jreg.analysis import metrics
from jreg.core.train import NONNEGATIVE, UNIT_INTERVAL, Task
from jreg.nn import nets
from jreg.regularizers import losses, penalties
from jreg.util import checks

PyTree = Any
Penalty = Callable[[PyTree, dict, dict], jax.Array]

#: ½‖θ‖² on every parameter (biases too): its gradient is θ, the numpy reference's ``λW``.
HALF_L2: Penalty = lambda params, batch, aux: 0.5 * penalties.l2(params)
#: ‖θ‖₁ on every parameter.
L1: Penalty = lambda params, batch, aux: penalties.l1(params)

CLASSIFICATION = ("cross_entropy", "token_cross_entropy")


def split_data(x_train, y_train, x_test, y_test, **extra_train) -> dict:
    """``{"train": {"x", "y", **extra_train}, "test": {"x", "y"}}`` from four arrays."""
    return {
        "train": {"x": x_train, "y": y_train, **extra_train},
        "test": {"x": x_test, "y": y_test},
    }


def _loss_fn(loss: str | Callable) -> Callable:
    """``(out, target, batch, hp, train) -> scalar`` for a named loss."""
    if callable(loss):
        return lambda out, target, batch, hp, train: loss(out, target, batch, hp)
    checks.check_choice(
        "loss", loss, ("cross_entropy", "token_cross_entropy", "mse", "reconstruction")
    )
    if loss == "cross_entropy":

        def ce(out, target, batch, hp, train):
            eps = hp.get("label_smoothing", 0.0) if train else 0.0
            return losses.cross_entropy(out, target, label_smoothing=eps)

        return ce
    if loss == "token_cross_entropy":

        def token_ce(out, target, batch, hp, train):
            per = losses.per_example_cross_entropy(
                out.reshape(-1, out.shape[-1]), target.reshape(-1)
            )
            mask = batch.get("mask", jnp.ones(target.shape, bool)).reshape(-1)
            mask = mask.astype(per.dtype)
            return jnp.sum(per * mask) / jnp.maximum(mask.sum(), 1.0)

        return token_ce
    # mse / reconstruction: mean over examples of the summed squared error per example
    return lambda out, target, batch, hp, train: jnp.mean(
        jnp.sum(jnp.square(out - target).reshape(out.shape[0], -1), axis=-1)
    )


def supervised(
    model,
    *,
    optimizer: optax.GradientTransformation | Callable[[Mapping], optax.GradientTransformation],
    loss: str | Callable = "cross_entropy",
    regularizers: Mapping[str, Penalty] | None = None,
    hparams: Mapping[str, float] | None = None,
    augment: Callable | None = None,
    target: Callable[[dict, Mapping], jax.Array] | None = None,
    eval_metrics: Callable[[jax.Array, jax.Array, dict, Mapping], dict] | None = None,
    track: Callable[[PyTree, Mapping], dict] | None = None,
    step_metrics: Callable[[jax.Array, jax.Array, dict, dict, Mapping], dict] | None = None,
    splits: tuple[str, ...] = ("train", "test"),
    example_x: jax.Array | None = None,
    keep_init: bool = False,
    name: str = "supervised",
) -> Task:
    """A supervised-learning :class:`jreg.core.train.Task`.

    Args:
      model: a :class:`jreg.nn.nets.Model`, or a flax linen module (``example_x`` needed).
      optimizer: an optax transformation or ``hp -> transformation`` (hparams may be traced).
      loss: ``"cross_entropy"`` (integer labels (N,), logits (N, K); smoothing from
        ``hp["label_smoothing"]`` in training), ``"token_cross_entropy"`` (labels (N, L),
        logits (N, L, K), optional ``batch["mask"]`` (N, L) of tokens to count),
        ``"mse"`` (float targets), ``"reconstruction"`` (target = input), or a callable
        ``(out, target, batch, hp) -> scalar``.
      regularizers: ``{name: penalty(params, batch, aux) -> scalar}``; ``hp[name]``
        weights it (declared with default 0 unless ``hparams`` gives one).
      hparams: further declared hyperparameters and defaults (``learning_rate``,
        ``dropout_rate``, ``label_smoothing``, ...), read by the model, the optimizer,
        ``augment`` and ``target``.
      augment: ``(key, x, hp) -> x`` applied to each training batch.
      target: ``(batch, hp) -> target``; default ``batch["y"]`` (``batch["x"]`` for
        reconstruction). Used in training and evaluation (e.g. noisy vs clean labels).
      eval_metrics: ``(out, target, batch, hp) -> dict`` of extra per-split numbers.
      track: ``(state, hp) -> dict`` of extra numbers at every evaluation (norms, ...).
      step_metrics: ``(out, target, batch, aux, hp) -> dict`` of extra numbers of each
        training step's forward pass (before its update; not differentiated), averaged
        over each evaluation period like ``train_objective`` (``eval_every=1``: per step).
      splits: data splits evaluated (full batch) after every period: ``{split}_loss``
        (unregularized, no smoothing), and for classification ``{split}_accuracy`` and
        ``{split}_error`` (mean of mistakes: exactly 0 at interpolation).
      example_x: an input batch for shapes (flax linen modules).
      keep_init: also keep the initial parameters in the state (``state["init_params"]``),
        e.g. for ``track`` functions that measure the change from initialisation.
      name: task name.

    Returns:
      A Task with step metric ``train_objective`` (the regularized minibatch objective).
    """
    if not isinstance(model, nets.Model):
        if example_x is None:
            raise ValueError("a flax module needs example_x (one input batch) for its shapes.")
        model = nets.linen(model, example_x)
    regularizers = dict(regularizers or {})
    declared = {name: 0.0 for name in regularizers}
    if loss == "cross_entropy":
        declared["label_smoothing"] = 0.0
    declared.update(hparams or {})
    data_loss = _loss_fn(loss)
    get_opt = (
        optimizer
        if callable(optimizer) and not hasattr(optimizer, "update")
        else (lambda hp: optimizer)
    )
    get_target = target or (
        (lambda batch, hp: batch["x"]) if loss == "reconstruction" else (lambda b, hp: b["y"])
    )

    def init(key, hp):
        params, model_state = model.init(key, hp)
        state = {
            "params": params,
            "opt_state": get_opt(hp).init(params),
            "model_state": model_state,
        }
        return {**state, "init_params": params} if keep_init else state

    def objective(params, model_state, batch, key, hp):
        k_aug, k_model = jax.random.split(key)
        x = batch["x"] if augment is None else augment(k_aug, batch["x"], hp)
        out, model_state, aux = model.apply(params, model_state, x, key=k_model, train=True, hp=hp)
        target = get_target(batch, hp)
        obj = data_loss(out, target, batch, hp, True)
        extra = {} if step_metrics is None else step_metrics(out, target, batch, aux, hp)
        for reg_name, penalty in regularizers.items():
            weight = hp[reg_name]
            if not checks.is_static_zero(weight):
                obj = obj + weight * penalty(params, {**batch, "x": x}, aux)
        return obj, (model_state, jax.lax.stop_gradient(extra))

    def step(state, batch, key, hp):
        (obj, (model_state, extra)), grads = jax.value_and_grad(objective, has_aux=True)(
            state["params"], state["model_state"], batch, key, hp
        )
        updates, opt_state = get_opt(hp).update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        new = {**state, "params": params, "opt_state": opt_state, "model_state": model_state}
        return new, {"train_objective": obj, **extra}

    def evaluate(state, data, hp):
        out = {}
        for split in splits:
            batch = data[split]
            pred, _, _ = model.apply(
                state["params"], state["model_state"], batch["x"], key=None, train=False, hp=hp
            )
            y = get_target(batch, hp)
            out[f"{split}_loss"] = data_loss(pred, y, batch, hp, False)
            if loss == "cross_entropy":
                out[f"{split}_accuracy"] = metrics.accuracy(pred, y)
                out[f"{split}_error"] = jnp.mean(jnp.argmax(pred, -1) != y)
            elif loss == "token_cross_entropy":  # over the tokens the mask counts
                mask = batch.get("mask", jnp.ones(y.shape, bool)).astype(jnp.float32)
                right = (jnp.argmax(pred, -1) == y).astype(jnp.float32)
                out[f"{split}_accuracy"] = jnp.sum(right * mask) / jnp.maximum(mask.sum(), 1.0)
                out[f"{split}_error"] = 1.0 - out[f"{split}_accuracy"]
            if eval_metrics is not None:
                extra = eval_metrics(pred, y, batch, hp)
                out.update({f"{split}_{k}": v for k, v in extra.items()})
        if track is not None:
            out.update(track(state, hp))
        return out

    def check(data):
        for split in {"train", *splits}:
            if split not in data:
                raise ValueError(f"data has no {split!r} split; it has {sorted(data)}.")
            batch = data[split]
            checks.check_finite(f"{split} x", batch["x"])
            n = np.shape(batch["x"])[0]
            if n == 0:
                raise ValueError(f"the {split} split is empty.")
            for k, v in batch.items():
                if np.shape(v)[:1] != (n,):
                    raise ValueError(
                        f"{split}[{k!r}] has {np.shape(v)[:1]} examples but {split}['x'] has {n}."
                    )
        if loss in CLASSIFICATION:
            hp = dict(declared)
            params = jax.eval_shape(lambda: model.init(jax.random.key(0), hp))
            x1 = data["train"]["x"][:1]
            out = jax.eval_shape(
                lambda p: model.apply(p[0], p[1], x1, key=None, train=False, hp=hp)[0], params
            )
            k = out.shape[-1]
            for split in {"train", *splits}:
                for name_ in ("y", "y_noisy"):
                    if name_ in data[split]:
                        y = np.asarray(data[split][name_])
                        checks.check_labels(f"{split} {name_}", y.reshape(-1), k)

    bounds = {k: NONNEGATIVE for k in regularizers}
    bounds |= {k: NONNEGATIVE for k in ("learning_rate", "lr", "lr0") if k in declared}
    rates = ("label_smoothing", "dropout_rate", "drop_path_rate", "shift_p")
    bounds |= {k: UNIT_INTERVAL for k in rates if k in declared}
    return Task(init, step, evaluate, declared, check, name, bounds)
