"""Part (b): batch norm makes the layer before it scale invariant; L2 then only moves ‖W‖.

``x -> W (no bias) -> batch norm (affine) -> ReLU -> V x + c`` (:func:`jreg.nn.nets.bn_mlp`),
L2 on ``W`` only, plain SGD. ``f(x; cW) = f(x; W)`` up to batch norm's ``eps``, so the
penalty cannot change the function class, only ``‖W‖``, and the effective learning rate
``η/‖W‖²`` grows as the penalty shrinks the norm (van Laarhoven 2017; Zhang et al. 2019,
"Three mechanisms of weight decay regularization").
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jreg import tasks
from jreg.experiments import kit
from jreg.nn import nets
from jreg.regularizers import losses
from jreg.util import checks

from . import _common

EPS = 1e-8  # the only term that breaks BN's scale invariance; kept tiny on purpose


def model(d_in: int, hidden: int, classes: int, *, eps: float = EPS) -> nets.Model:
    """The one-hidden-layer batch-norm MLP (:func:`jreg.nn.nets.bn_mlp`, LeCun init)."""
    return nets.bn_mlp((d_in, hidden, classes), eps=eps)


def _w(params) -> jax.Array:
    return params["hidden"][0]["w"]


def _with_w(params, w):
    return {**params, "hidden": [{"w": w}]}


def _train_logits(params, x, eps):
    """Logits ``(N, K)`` normalised with the statistics of the batch ``x`` (train mode)."""
    d_in, hidden = _w(params).shape
    m = model(d_in, hidden, params["out"]["w"].shape[1], eps=eps)
    _, state = m.init(jax.random.key(0), {})
    return m.apply(params, state, x, key=None, train=True, hp={})[0]


@functools.partial(jax.jit, static_argnames=("eps",))
def _logit_diffs(params, x, scales, eps):
    base = _train_logits(params, x, eps)
    one = lambda c: jnp.max(jnp.abs(_train_logits(_with_w(params, c * _w(params)), x, eps) - base))
    return jax.vmap(one)(scales)


def scale_invariance(params: dict, x: jax.Array, scales, *, eps: float = EPS) -> dict:
    """Max |f(x; cW) − f(x; W)| over the logits of the batch ``x`` (N, D), per scale ``c``."""
    diffs = _logit_diffs(params, x, jnp.asarray(scales, jnp.float32), eps)
    return {f"c={c:g}": float(d) for c, d in zip(scales, diffs, strict=True)}


@jax.jit
def _cos_grad_w(params, x, y):
    """cos(∇_W L, W): zero when the loss is invariant to the scale of ``W``."""
    loss = lambda w: losses.cross_entropy(_train_logits(_with_w(params, w), x, EPS), y)
    g, w = jax.grad(loss)(_w(params)), _w(params)
    return jnp.vdot(g, w) / (jnp.linalg.norm(g) * jnp.linalg.norm(w))


def compute(config: dict, ds: dict, run: kit.Run) -> dict:
    """Sweep the L2 strength on ``W`` x seeds; ‖W‖, effective lr and accuracy over training.

    Args:
      config: the experiment config (``bn_*`` entries).
      ds: MNIST-1D as :func:`jreg.tasks.split_data`.
      run: the runner's sweep settings.

    Returns:
      ``w_norm``, ``eff_lr``, ``test_accuracy``, ``train_loss`` of shape (H, S, T), the
      scale-invariance checks and ``cos_grad_w``.
    """
    x_tr, y_tr = ds["train"]["x"], ds["train"]["y"]
    d_in, classes = x_tr.shape[1], int(np.max(y_tr)) + 1
    lr = config["bn_lr"]

    def track(state, hp):
        del hp
        sq = jnp.sum(jnp.square(_w(state["params"])))
        return {"w_norm": jnp.sqrt(sq), "eff_lr": lr / sq}

    task = tasks.supervised(
        model(d_in, config["bn_hidden"], classes),
        optimizer=optax.sgd(lr),
        regularizers={"l2": lambda params, batch, aux: 0.5 * jnp.sum(jnp.square(_w(params)))},
        track=track,
    )
    hparams = {"l2": np.asarray(config["bn_l2"], np.float32)}
    res, step = _common.sweep(run, task, ds, config, "bn", hparams, eval_epochs=1)
    h = res.history
    x = jnp.asarray(x_tr[: config["bn_batch_size"]])
    y = jnp.asarray(y_tr[: config["bn_batch_size"]])
    params0, _ = model(d_in, config["bn_hidden"], classes).init(checks.seed_key(config["seed"]), {})
    trained = jax.tree.map(lambda a: a[0, 0], res.state["params"])  # no penalty, seed 0
    scales = config["bn_scales"]
    return {
        "step": step,
        "w_norm": h["w_norm"],  # (H, S, T)
        "eff_lr": h["eff_lr"],
        "test_accuracy": h["test_accuracy"],
        "train_loss": h["train_loss"],
        "max_abs_logit_diff": {
            "init": scale_invariance(params0, x, scales),
            "trained": scale_invariance(trained, x, scales),
            "init, default eps=1e-5": scale_invariance(params0, x, scales, eps=1e-5),
        },
        # Scale invariance makes the gradient orthogonal to W: <∇_W L, W> = 0.
        "cos_grad_w": float(_cos_grad_w(params0, x, y)),
    }


def notes(bn: dict) -> list[str]:
    """Sentences computed from :func:`compute`'s numbers."""
    final = np.asarray(bn["w_norm"])[:, :, -1].mean(1)
    acc = np.asarray(bn["test_accuracy"])[:, :, -1].mean(1)
    return [
        f"(b) Batch norm eps = {EPS:g} (the only term breaking scale invariance): max "
        f"|f(cW) − f(W)| = {max(bn['max_abs_logit_diff']['trained'].values()):.1e} after "
        "training; with the default eps = 1e-5 the logit difference at init is up to "
        f"{max(bn['max_abs_logit_diff']['init, default eps=1e-5'].values()):.1e}. "
        f"cos(∇_W L, W) at init = {bn['cos_grad_w']:.1e}.",
        f"(b) Final ‖W‖ {final[0]:.3g} without and {final[-1]:.3g} with the penalty; final test "
        f"accuracy {acc[0]:.4f} vs {acc[-1]:.4f} (evaluated with the running batch-norm "
        "statistics).",
    ]


def draw(axes, bn: dict, config: dict) -> None:
    """‖W‖, effective learning rate and test accuracy over training, per L2 strength."""
    names = ["no penalty" if lam == 0 else f"L2 on W, λ={lam:g}" for lam in config["bn_l2"]]
    for i, name in enumerate(names):
        for ax, key_ in zip(axes, ("w_norm", "eff_lr", "test_accuracy"), strict=True):
            kit.band(ax, bn["step"], np.asarray(bn[key_][i]), label=name)
    diffs = bn["max_abs_logit_diff"]["trained"]
    axes[0].set_title("(b) ‖W‖ of the layer before batch norm", fontsize=10)
    axes[0].set_ylabel("‖W‖ (Frobenius)")
    axes[1].set_title("(b) effective learning rate η / ‖W‖²", fontsize=10)
    axes[1].set_ylabel("η / ‖W‖²")
    axes[1].set_yscale("log")
    cs = ", ".join(f"{c:g}" for c in config["bn_scales"])
    axes[2].set_title(
        f"(b) test accuracy; |f(cW) − f(W)| ≤ {max(diffs.values()):.1e} (c = {cs})", fontsize=9
    )
    axes[2].set_ylabel("test accuracy")
    for ax in axes:
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
