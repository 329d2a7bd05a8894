"""Continual learning's training task: L2 anchor, EWC, online EWC and SI, exact Fisher.

One :class:`jreg.core.train.Task` (:func:`continual_task`) trains a network on split tasks
in turn (``streams.task_sequence``) under one of the three scenarios of van de Ven &
Tolias 2019 / Hsu et al. 2018 (a swept hyperparameter, see :func:`targets`), with all four
penalties each weighted by a swept hyperparameter (0 = off), and consolidates the previous
task's solution, its exact Fisher (:func:`exact_fisher`) and its SI importance at each task
switch. Used by :mod:`.continual_learning`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jreg.analysis import metrics
from jreg.core import train
from jreg.nn import models
from jreg.regularizers import losses

#: Arm -> its penalty-weight hyperparameter.
PENALTY = {"L2": "l2", "EWC": "ewc", "online EWC": "online_ewc", "SI": "si"}
#: The scenarios, in the order of the ``scenario`` hyperparameter's values 0, 1, 2.
SCENARIOS = ("task-IL", "domain-IL", "class-IL")


def _masked(logits, allowed):
    """Logits with the classes outside ``allowed`` pushed to -1e9 (probability exactly 0)."""
    return jnp.where(allowed, logits, -1e9)


def targets(y, scenario, *, num_classes: int, per_task: int):
    """Label and allowed outputs of digits ``y`` (N,) under ``scenario`` (0, 1 or 2).

    task-IL: the digit among its task's ``per_task`` outputs (the task identity is given;
    a head per task, as logits masked to the task's classes); domain-IL: ``y % per_task``
    among the first ``per_task`` outputs (one shared head, no task identity); class-IL:
    the digit among all ``num_classes`` outputs. Returns ``(label (N,), allowed (N, K))``.
    """
    c = jnp.arange(num_classes)
    own_task = c // per_task == (y // per_task)[..., None]
    first = jnp.broadcast_to(c < per_task, own_task.shape)
    allowed = jnp.where(scenario == 0, own_task, jnp.where(scenario == 1, first, True))
    return jnp.where(scenario == 1, y % per_task, y), allowed


def exact_fisher(params, x, allowed, *, activation: str) -> dict:
    """Diagonal Fisher ``mean_n Σ_c p(c|x_n) (∇_θ log p(c|x_n))²`` of an MLP
    (:func:`jreg.nn.models.mlp_apply` params, no dropout) under the (masked) predictive
    distribution, exactly, without per-example gradients: a dense layer's per-example
    gradient is ``h_n ⊗ δ_n`` (``h`` its input, ``δ`` the gradient at its output), so
    ``Σ_n`` of its square is ``(h²)ᵀ δ²``, one matmul; the ``δ`` of every class come from
    one forward pass and K backward passes (a vmapped VJP) of cotangent
    ``sqrt(p_c) (e_c − p)``, the gradient of ``sqrt(p_c) log p_c`` (``sqrt(p_c)`` constant).

    ``x`` (N, D) inputs; ``allowed`` (N, K) bool, the classes of each example's task.
    Returns a pytree like ``params``.
    """
    act, n = models.activation_fn(activation), x.shape[0]

    def forward(offsets):  # offsets (zeros) at every layer's output: their gradient is δ
        h, inputs = x, []
        for i, (layer, o) in enumerate(zip(params, offsets, strict=True)):
            inputs.append(h)
            h = h @ layer["w"] + layer["b"] + o
            h = act(h) if i < len(params) - 1 else h
        return h, inputs

    zeros = [jnp.zeros((n, layer["b"].shape[0]), x.dtype) for layer in params]
    logits, vjp, inputs = jax.vjp(forward, zeros, has_aux=True)
    p = jax.nn.softmax(_masked(logits, allowed))  # exactly 0 outside ``allowed``
    k = p.shape[-1]
    cot = lambda c: jnp.sqrt(p[:, c, None]) * (jax.nn.one_hot(c, k) - p)
    deltas = jax.vmap(lambda c: vjp(cot(c))[0])(jnp.arange(k))  # per layer (K, N, width)
    fisher = [
        {"w": jnp.einsum("nd,knh->dh", h**2, d**2) / n, "b": jnp.sum(d**2, (0, 1)) / n}
        for h, d in zip(inputs, deltas, strict=True)
    ]
    # Entries below 1e-20 (from classes of probability ~1e-30) are set to 0: they are
    # negligible, and float32 subnormals in the penalty slow the CPU down many times.
    return jax.tree.map(lambda f: jnp.where(f > 1e-20, f, 0.0), fisher)


def _dot(a, b) -> jax.Array:
    """``Σ a ⊙ b`` over every leaf of two pytrees of the same structure."""
    return sum(jnp.sum(x * y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def quadratic(state, hp) -> dict:
    """All four penalties as one quadratic form ``Σ (W θ² − 2 V θ) + c`` (twice the penalty).

    ``Σ_arm λ_arm Σ w_arm (θ − θ*_arm)²`` from the stored importances: L2 ``w = 1``, online
    EWC ``w = F̃`` and SI ``w = Ω``, all at ``anchor``; EWC ``Σ_k F_k (θ − θ*_k)²`` from
    ``ewc_a = Σ F_k``, ``ewc_b = Σ F_k θ*_k``, ``ewc_c = Σ F_k θ*_k²``. Refreshed at each
    task switch, so a step reads two arrays per parameter, whatever the arms.
    """
    tm, anchor = jax.tree.map, state["anchor"]
    w = tm(lambda o, s: hp["l2"] + hp["online_ewc"] * o + hp["si"] * s,
           state["online_fisher"], state["si_omega"])  # fmt: skip
    v = tm(lambda wi, a, b: wi * a + hp["ewc"] * b, w, anchor, state["ewc_b"])
    c = _dot(w, tm(jnp.square, anchor)) + hp["ewc"] * state["ewc_c"]
    w = tm(lambda wi, a: wi + hp["ewc"] * a, w, state["ewc_a"])
    return {"quad_w": w, "quad_v": v, "quad_c": c}


def continual_task(
    model,
    *,
    activation,
    learning_rate,
    steps_per_task,
    fisher_steps,
    fisher_examples,
    gamma,
    xi,
    num_classes,
    per_task,
):
    """A :class:`jreg.core.train.Task`: sequential training with L2 / EWC / online EWC / SI.

    Hyperparameters: ``scenario`` (0 task-IL, 1 domain-IL, 2 class-IL; :func:`targets`)
    and ``l2``, ``ewc``, ``online_ewc``, ``si`` (λ of each term ``(λ/2) Σ w ⊙ (θ − θ*)²``,
    0 = off): L2 ``w = 1`` anchored at the previous task's solution; EWC (Kirkpatrick et
    al. 2017) one term per earlier task k with its Fisher F_k and solution θ*_k, kept as
    ``Σ F_k``, ``Σ F_k θ*_k`` and ``Σ F_k θ*_k²`` (the same value and gradient); online EWC
    (Schwarz et al. 2018) ``w = F̃ ← γ F̃ + F_k`` at the latest solution; SI (Zenke et al.
    2017) ``w = Ω ← Ω + ω / (Δθ² + ξ)``, ω the path integral ``−Σ g ⊙ Δθ`` of the task.
    Batches come from ``streams.task_sequence`` (``x``, ``y`` digits, ``task``,
    ``task_step``) or, for joint training, ``streams.epochs`` over the union (no ``task``:
    no penalty). Evaluation: per task's split of ``data["val"]`` and ``data["test"]``
    (T, N, ...) the accuracy under the config's scenario, ``val`` and ``test`` (T,).
    """
    opt = optax.adam(learning_rate)
    zeros = lambda p: jax.tree.map(jnp.zeros_like, p)

    def init(key, hp):
        params, _ = model.init(key, hp)
        z = zeros(params)
        state = dict(params=params, opt_state=opt.init(params), anchor=params, quad_c=jnp.zeros(()))
        keys = ("ewc_a", "ewc_b", "online_fisher", "si_omega", "quad_w", "quad_v")
        return {
            **state,
            **dict.fromkeys((*keys, "fisher_acc", "si_path"), z),
            "ewc_c": jnp.zeros(()),
        }

    def labels(y, hp):
        return targets(y, hp["scenario"], num_classes=num_classes, per_task=per_task)

    def objective(params, state, batch, hp):
        logits = model.apply(params, {}, batch["x"], key=None, train=True, hp=hp)[0]
        y, allowed = labels(batch["y"], hp)
        obj = losses.cross_entropy(_masked(logits, allowed), y)
        if "task" not in batch:  # joint training: no penalty
            return obj
        w, v, p = (jax.tree.leaves(t) for t in (state["quad_w"], state["quad_v"], params))
        quad = sum(jnp.sum(wi * pi**2 - 2 * vi * pi) for wi, vi, pi in zip(w, v, p, strict=True))
        return obj + 0.5 * (quad + state["quad_c"])

    def consolidate(state, hp):
        """Task k-1's solution and importances enter the penalty (at task k's first step)."""
        p, f, tm = state["params"], state["fisher_acc"], jax.tree.map
        new = {
            "anchor": p, "fisher_acc": zeros(p), "si_path": zeros(p),
            "ewc_a": tm(lambda a, fi: a + fi, state["ewc_a"], f),
            "ewc_b": tm(lambda b, fi, pi: b + fi * pi, state["ewc_b"], f, p),
            "ewc_c": state["ewc_c"] + _dot(f, tm(jnp.square, p)),
            "online_fisher": tm(lambda o, fi: gamma * o + fi, state["online_fisher"], f),
            "si_omega": tm(lambda o, w, pi, a: o + w / ((pi - a) ** 2 + xi),
                           state["si_omega"], state["si_path"], p, state["anchor"]),
        }  # fmt: skip
        return {**state, **new, **quadratic(new, hp)}

    def step(state, batch, key, hp):
        del key
        if "task" in batch:
            switch = (batch["task_step"] == 0) & (batch["task"] > 0)  # the same in every config
            state = jax.lax.cond(switch, consolidate, lambda s, _: s, state, hp)
        obj, grads = jax.value_and_grad(objective)(state["params"], state, batch, hp)
        updates, opt_state = opt.update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        path = jax.tree.map(lambda w, g, u: w - g * u, state["si_path"], grads, updates)
        state = {**state, "params": params, "opt_state": opt_state, "si_path": path}
        if "task" in batch:
            state = accumulate(state, batch, hp)
        return state, {"train_objective": obj}

    def accumulate(state, batch, hp):
        """Running mean of the live task's Fisher over its last ``fisher_steps`` steps."""
        live = batch["task_step"] >= steps_per_task - fisher_steps

        def add(acc):
            m = fisher_examples  # the first m of the (shuffled) batch
            _, allowed = labels(batch["y"][:m], hp)
            f = exact_fisher(state["params"], batch["x"][:m], allowed, activation=activation)
            return jax.tree.map(lambda a, b: a + b / fisher_steps, acc, f)

        return {**state, "fisher_acc": jax.lax.cond(live, add, lambda a: a, state["fisher_acc"])}

    def evaluate(state, data, hp):
        apply = lambda x: model.apply(state["params"], {}, x, key=None, train=False, hp=hp)[0]

        def acc(split):  # (T,) accuracy on each task's examples of the split
            logits = jax.vmap(apply)(data[split]["x"])
            y, allowed = labels(data[split]["y"], hp)
            return jax.vmap(metrics.accuracy)(_masked(logits, allowed), y)

        return {"val": acc("val"), "test": acc("test")}

    hparams = {"scenario": 0.0, **dict.fromkeys(PENALTY.values(), 0.0)}
    bounds = dict.fromkeys(hparams, train.NONNEGATIVE)
    return train.Task(init, step, evaluate, hparams, name="continual", bounds=bounds)
