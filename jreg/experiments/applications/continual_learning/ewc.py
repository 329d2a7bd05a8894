"""Continual learning's training task: anchored L2, EWC and online EWC, exact Fisher.

One :class:`jreg.core.train.Task` (:func:`continual_task`) trains a network on tasks in
turn (``streams.task_sequence``) with all three penalties, each weighted by a swept
hyperparameter (0 = off), and consolidates the previous task's solution and its exact
Fisher (:func:`exact_fisher`) at each task switch. Used by :mod:`.continual_learning`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jreg.analysis import metrics
from jreg.core import train
from jreg.regularizers import losses, penalties

#: Arm -> its penalty-weight hyperparameter.
PENALTY = {"anchored L2": "anchor_l2", "EWC": "ewc", "online EWC": "online_ewc"}


def _masked(logits, allowed):
    """Logits with the classes outside ``allowed`` pushed to -1e9 (probability exactly 0)."""
    return jnp.where(allowed, logits, -1e9)


def exact_fisher(model, params, x, allowed) -> dict:
    """Diagonal Fisher ``mean_n Σ_c p(c|x_n) (∇_θ log p(c|x_n))²`` under the (masked)
    predictive distribution, exactly: K calls of
    :func:`jreg.regularizers.penalties.diagonal_fisher`, one per class c, each with the
    log-likelihood weighted by ``sqrt(p(c|x))`` (held constant).

    ``model`` has no model state; ``x`` (N, D) inputs; ``allowed`` (N, K) bool, the classes
    of each example's task. Returns a pytree like ``params``.
    """
    k = allowed.shape[-1]
    xa = jnp.concatenate([x, allowed.astype(x.dtype)], axis=-1)  # one array per example

    def weighted_ll(p, xai, c):  # sqrt(p_c) log p_c: its squared gradient is p_c (∇ log p_c)²
        xi, ai = xai[:-k], xai[-k:] > 0
        logits = model.apply(p, {}, xi[None], key=None, train=False, hp={})[0][0]
        lp = jax.nn.log_softmax(_masked(logits, ai))[c]
        return jnp.sqrt(jnp.exp(jax.lax.stop_gradient(lp))) * lp

    def one_class(c):
        return penalties.diagonal_fisher(weighted_ll, params, xa, jnp.full(x.shape[0], c))

    fisher = jax.tree.map(lambda f: f.sum(0), jax.vmap(one_class)(jnp.arange(k)))
    # Entries below 1e-20 (from classes of probability ~1e-30) are set to 0: they are
    # negligible, and float32 subnormals in the penalty slow the CPU down many times.
    return jax.tree.map(lambda f: jnp.where(f > 1e-20, f, 0.0), fisher)


def continual_task(
    model, *, learning_rate, num_tasks, steps_per_task, fisher_steps, fisher_examples, gamma
):
    """A :class:`jreg.core.train.Task` training ``model`` with anchored-L2 / EWC / online EWC.

    Hyperparameters ``anchor_l2``, ``ewc``, ``online_ewc`` (λ of each term, 0 = off).
    Batches come from ``streams.task_sequence`` (``x`` (B, D), ``y`` (B,), ``allowed``
    (B, K), ``task``, ``task_step``) or, for joint training, from ``streams.epochs`` over
    the union (no ``task``: nothing is consolidated). State: ``params``, ``opt_state``,
    ``anchors`` / ``fishers`` (T, ...) per earlier task (EWC), ``anchor`` (latest
    solution) and ``online_fisher`` (γ-decayed sum), ``fisher_acc`` (running mean of the
    live task's Fisher over its last ``fisher_steps`` steps). Evaluation: ``accuracy``
    (argmax over all classes) and ``task_accuracy`` (masked to the task's classes), each
    (T,), one entry per task's test set.
    """
    opt = optax.adam(learning_rate)
    zeros = lambda p: jax.tree.map(jnp.zeros_like, p)
    stack = lambda p: jax.tree.map(lambda a: jnp.zeros((num_tasks, *a.shape), a.dtype), p)

    def init(key, hp):
        params, _ = model.init(key, hp)
        state = dict(params=params, opt_state=opt.init(params), anchors=stack(params))
        state |= dict(fishers=stack(params), anchor=params, online_fisher=zeros(params))
        return {**state, "fisher_acc": zeros(params)}

    def objective(params, state, batch, hp):
        logits = model.apply(params, {}, batch["x"], key=None, train=True, hp=hp)[0]
        obj = losses.cross_entropy(logits, batch["y"])
        if "task" not in batch:  # joint training: no penalty
            return obj
        many = jax.vmap(penalties.ewc, in_axes=(None, 0, 0))
        terms = {
            "anchor_l2": lambda: penalties.anchored_l2(params, state["anchor"]),
            "ewc": lambda: jnp.sum(many(params, state["anchors"], state["fishers"])),
            "online_ewc": lambda: penalties.ewc(params, state["anchor"], state["online_fisher"]),
        }
        for name, term in terms.items():
            obj = obj + 0.5 * hp[name] * term()
        return obj

    def consolidate(state, batch):
        """At the first step of task k > 0: task k-1's anchor and Fisher enter the penalty."""
        switch = (batch["task_step"] == 0) & (batch["task"] > 0)
        params, fisher, prev = state["params"], state["fisher_acc"], batch["task"] - 1
        put = lambda stacked, new: jax.tree.map(lambda s, n: s.at[prev].set(n), stacked, new)
        new = {"anchors": put(state["anchors"], params), "fishers": put(state["fishers"], fisher)}
        online = jax.tree.map(lambda f, n: gamma * f + n, state["online_fisher"], fisher)
        new |= {"anchor": params, "online_fisher": online, "fisher_acc": zeros(fisher)}
        pick = lambda a, b: jnp.where(switch, a, b)
        return {**state, **{k: jax.tree.map(pick, v, state[k]) for k, v in new.items()}}

    def accumulate(state, batch):
        """Running mean of the live task's Fisher over its last ``fisher_steps`` steps."""
        live = batch["task_step"] >= steps_per_task - fisher_steps

        def add(acc):
            m = fisher_examples  # the first m of the (shuffled) batch
            f = exact_fisher(model, state["params"], batch["x"][:m], batch["allowed"][:m])
            return jax.tree.map(lambda a, b: a + b / fisher_steps, acc, f)

        return {**state, "fisher_acc": jax.lax.cond(live, add, lambda a: a, state["fisher_acc"])}

    def step(state, batch, key, hp):
        del key
        if "task" in batch:
            state = consolidate(state, batch)
        obj, grads = jax.value_and_grad(objective)(state["params"], state, batch, hp)
        updates, opt_state = opt.update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        state = {**state, "params": params, "opt_state": opt_state}
        if "task" in batch:
            state = accumulate(state, batch)
        return state, {"train_objective": obj}

    def evaluate(state, data, hp):
        test = data["test"]  # (T, Nt, ...)
        apply = lambda x: model.apply(state["params"], {}, x, key=None, train=False, hp=hp)[0]
        logits = jax.vmap(apply)(test["x"])
        masked = _masked(logits, test["allowed"])
        return {
            "accuracy": jax.vmap(metrics.accuracy)(logits, test["y"]),
            "task_accuracy": jax.vmap(metrics.accuracy)(masked, test["y"]),
        }

    hparams = dict.fromkeys(PENALTY.values(), 0.0)
    bounds = dict.fromkeys(hparams, train.NONNEGATIVE)
    return train.Task(init, step, evaluate, hparams, name="continual", bounds=bounds)
