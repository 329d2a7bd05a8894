"""Three pitfalls of weight decay: bias decay and dead ReLUs, batch norm, Adam + L2 vs AdamW.

(a) Decaying biases (``mask=None``) vs decaying only weight matrices
    (:func:`jreg.transforms.default_decay_mask`) in a ReLU MLP trained with SGDW: count the
    units that output 0 on every training example at the end of training.
(b) Batch norm makes the preceding layer scale invariant, ``f(x; cW) = f(x; W)``: an L2
    penalty on ``W`` cannot change the function class, only ``‖W‖``, and the effective
    learning rate ``η/‖W‖²`` grows as the penalty shrinks the norm (van Laarhoven 2017;
    Zhang et al. 2019, "Three mechanisms of weight decay regularization").
(c) Adam with an L2 term in the loss vs AdamW's decoupled decay at the same λ
    (Loshchilov & Hutter 2019): Adam rescales the L2 gradient per coordinate, AdamW does not.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jreg import data, losses, models, penalties, plotting, train, transforms
from jreg.experiments.runner import Outcome, mean_std

DESCRIPTION = (
    "Weight-decay pitfalls: (a) bias decay vs dead ReLUs (two moons, SGDW), (b) batch "
    "norm scale invariance and effective lr (MNIST-1D), (c) Adam+L2 vs AdamW "
    "(MNIST-1D)."
)

BN_EPS = 1e-8  # the only term that breaks BN's scale invariance; kept tiny on purpose


def get_config(quick: bool = False) -> dict:
    """Sizes of the three parts; ``quick`` shrinks epochs and data."""
    return {
        "seed": 0,
        "seeds": 5,
        # (a) dead ReLUs: two moons, 2-64-64-2 ReLU MLP, SGD with decoupled decay
        "dead_n": 200 if quick else 512,
        "dead_noise": 0.1,
        "dead_widths": (2, 64, 64, 2),
        "dead_lr": 0.1,
        "dead_decays": (0.0, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1),
        "dead_epochs": 20 if quick else 150,
        "dead_batch_size": 32,
        # (b) batch norm: 40 -> W (no bias) -> BN -> ReLU -> 10, L2 on W only, plain SGD
        "n_train": 1000 if quick else 4000,
        "n_test": 500 if quick else 1000,
        "bn_hidden": 64,
        "bn_lr": 0.2,
        "bn_l2": (0.0, 1e-2),
        "bn_epochs": 6 if quick else 30,
        "bn_batch_size": 50,
        "bn_scales": (0.1, 10.0),
        # (c) Adam + L2 in the loss vs AdamW, MLP 40-128-10 (ReLU), weights-only decay
        "adam_widths": (40, 128, 10),
        "adam_lr": 1e-3,
        "adam_lams": (1e-3, 1e-2, 1e-1, 1.0),
        "adam_epochs": 6 if quick else 40,
        "adam_batch_size": 50,
    }


# ----------------------------------------------------------------------------- (a)


def _eval_every(num_epochs: int, evals: int = 10) -> int:
    """Largest divisor of ``num_epochs`` that still gives at least ``evals`` evaluations."""
    return max(
        [
            d
            for d in range(1, num_epochs + 1)
            if num_epochs % d == 0 and num_epochs // d >= min(evals, num_epochs)
        ]
    )


def dead_units(params, x: jax.Array) -> jax.Array:
    """Number of hidden ReLU units whose output is 0 on every row of ``x``, per layer.

    Args:
      params: MLP parameters (:func:`jreg.models.mlp_init`).
      x: inputs ``(N, D)`` (the whole training set).

    Returns:
      int32 array ``(L,)``, one count per hidden layer.
    """
    h, out = x, []
    for layer in params[:-1]:
        h = jax.nn.relu(h @ layer["w"] + layer["b"])
        out.append(jnp.sum(jnp.all(h == 0, axis=0)).astype(jnp.int32))
    return jnp.stack(out)


def near_dead_units(params, x: jax.Array, rel: float = 0.01) -> jax.Array:
    """Hidden units whose largest output on ``x`` is below ``rel`` times the layer's largest.

    Counts exactly dead units too; catches units that weight decay shrank towards zero
    without their output becoming exactly 0. Returns int32 ``(L,)``.
    """
    h, out = x, []
    for layer in params[:-1]:
        h = jax.nn.relu(h @ layer["w"] + layer["b"])
        peak = h.max(axis=0)
        out.append(jnp.sum(peak <= rel * peak.max()).astype(jnp.int32))
    return jnp.stack(out)


def _is_bias(params):
    return jax.tree.map(lambda m: not m, transforms.default_decay_mask(params))


def sgdw_bias_switch(lr: float, decay, bias_decay) -> optax.GradientTransformation:
    """SGD with decoupled decay ``lr·decay·θ`` on matrices and ``lr·decay·bias_decay·θ`` on biases.

    Two :func:`jreg.transforms.decoupled_weight_decay` transforms with complementary static
    masks, so that whether biases are decayed can be a swept (traced) hyperparameter:
    ``bias_decay = 0`` equals ``transforms.sgdw(lr, decay, mask=default_decay_mask)`` and
    ``bias_decay = 1`` equals ``transforms.sgdw(lr, decay, mask=None)`` exactly (tested), and
    both settings then train in one vmapped sweep.
    """
    return optax.chain(
        transforms.decoupled_weight_decay(decay, mask=transforms.default_decay_mask),
        transforms.decoupled_weight_decay(decay * bias_decay, mask=_is_bias),
        optax.scale_by_learning_rate(lr),
    )


@jax.jit
def _dead_unit_stats(params, x):
    """Per hidden unit: dead on all of ``x`` (bool), bias, incoming-weight norm; (U,) each."""
    h, dead, bias, wn = x, [], [], []
    for layer in params[:-1]:
        h = jax.nn.relu(h @ layer["w"] + layer["b"])
        dead.append(jnp.all(h == 0, axis=0))
        bias.append(layer["b"])
        wn.append(jnp.linalg.norm(layer["w"], axis=0))
    return jnp.concatenate(dead), jnp.concatenate(bias), jnp.concatenate(wn)


DEAD_SETTINGS = ("weights only", "weights + biases")  # bias_decay = 0, 1


def _run_dead(config, progress):
    ds = data.two_moons(
        jax.random.key(config["seed"]), config["dead_n"], noise=config["dead_noise"]
    )
    x_tr = jnp.asarray(ds[0])
    decays = np.asarray(config["dead_decays"], np.float32)
    hp = train.grid(bias_decay=[0.0, 1.0], decay=decays)  # bias_decay varies slowest
    problem = train.mlp_classifier(
        config["dead_widths"],
        optimizer=lambda hp: sgdw_bias_switch(config["dead_lr"], hp["decay"], hp["bias_decay"]),
        activation="relu",
        init="he",
        track=lambda p, p0, hp: {
            "dead": dead_units(p, x_tr),
            "near_dead": near_dead_units(p, x_tr),
        },
    )
    res = train.sweep(
        problem,
        ds,
        seeds=config["seeds"],
        hparams=hp,
        num_epochs=config["dead_epochs"],
        batch_size=config["dead_batch_size"],
        eval_every=_eval_every(config["dead_epochs"]),
        progress=progress,
    )
    h = jax.tree.map(np.asarray, res.history)
    stats = jax.vmap(jax.vmap(_dead_unit_stats, in_axes=(0, None)), in_axes=(0, None))
    is_dead, bias, wnorm = (np.asarray(a) for a in stats(res.params, x_tr))  # (2H, S, U)
    k = decays.size
    out = {}
    for j, name in enumerate(DEAD_SETTINGS):
        sl = slice(j * k, (j + 1) * k)
        # Mean bias and incoming-weight norm of the units dead at the end (layers, seeds).
        with np.errstate(invalid="ignore"):
            n_dead = is_dead[sl].sum(axis=(1, 2))
            b_mean = np.where(n_dead > 0, (bias[sl] * is_dead[sl]).sum(axis=(1, 2)), np.nan)
            w_mean = np.where(n_dead > 0, (wnorm[sl] * is_dead[sl]).sum(axis=(1, 2)), np.nan)
        out[name] = {
            "dead_unit_bias_mean": b_mean / np.maximum(n_dead, 1),
            "dead_unit_w_norm_mean": w_mean / np.maximum(n_dead, 1),
            "epoch": h["epoch"][0, 0],
            "dead_per_layer": h["track"]["dead"][sl],  # (H, S, T, L)
            "near_dead_per_layer": h["track"]["near_dead"][sl],
            "test_accuracy": h["test_accuracy"][sl, :, -1],
            "train_accuracy": h["train_accuracy"][sl, :, -1],
        }
    return decays, out


# ----------------------------------------------------------------------------- (b)


def bn_init(key: jax.Array, d_in: int, hidden: int, classes: int) -> dict:
    """Params of ``x -> W (no bias) -> batch norm (affine) -> ReLU -> V x + c``."""
    k1, k2 = jax.random.split(key)
    bn, _ = models.batch_norm_init(hidden)
    return {
        "w": jax.random.normal(k1, (d_in, hidden)) / np.sqrt(d_in),
        "bn": bn,
        "v": jax.random.normal(k2, (hidden, classes)) / np.sqrt(hidden),
        "c": jnp.zeros((classes,)),
    }


def bn_apply(params: dict, x: jax.Array, *, eps: float = BN_EPS) -> jax.Array:
    """Logits ``(N, K)``; batch norm uses the statistics of the batch ``x`` (train mode)."""
    h, _ = models.batch_norm(x @ params["w"], params=params["bn"], train=True, eps=eps)
    return jax.nn.relu(h) @ params["v"] + params["c"]


def _bn_problem(config, d_in, classes) -> train.Problem:
    lr = config["bn_lr"]

    def init(key, hp):
        del hp
        return bn_init(key, d_in, config["bn_hidden"], classes)

    def loss(params, x, y, *, key, hp):
        del key
        obj = losses.cross_entropy(bn_apply(params, x), y)
        return obj + 0.5 * hp["l2"] * jnp.sum(jnp.square(params["w"]))

    def predict(params, x, hp):
        del hp
        return bn_apply(params, x)  # full-set batch statistics (no running averages kept)

    def track(params, init_params, hp):
        del init_params, hp
        sq = jnp.sum(jnp.square(params["w"]))
        return {"w_norm": jnp.sqrt(sq), "eff_lr": lr / sq}

    return train.Problem(init, loss, predict, lambda hp: optax.sgd(lr), track)


@functools.partial(jax.jit, static_argnames=("eps",))
def _logit_diffs(params, x, scales, eps):
    base = bn_apply(params, x, eps=eps)
    one = lambda c: jnp.max(jnp.abs(bn_apply(dict(params, w=c * params["w"]), x, eps=eps) - base))
    return jax.vmap(one)(scales)


def scale_invariance(params: dict, x: jax.Array, scales, *, eps: float = BN_EPS) -> dict:
    """Max |f(x; cW) − f(x; W)| over the logits of the batch ``x``, for each scale ``c``."""
    diffs = _logit_diffs(params, x, jnp.asarray(scales, jnp.float32), eps)
    return {f"c={c:g}": float(d) for c, d in zip(scales, diffs, strict=True)}


@jax.jit
def _cos_grad_w(params, x, y):
    """cos(∇_W L, W): zero when the loss is invariant to the scale of ``W``."""
    g = jax.grad(lambda w: losses.cross_entropy(bn_apply(dict(params, w=w), x), y))(params["w"])
    return jnp.vdot(g, params["w"]) / (jnp.linalg.norm(g) * jnp.linalg.norm(params["w"]))


def _run_bn(config, ds, progress):
    d_in, classes = ds[0].shape[1], int(ds[1].max()) + 1
    problem = _bn_problem(config, d_in, classes)
    res = train.sweep(
        problem,
        ds,
        seeds=config["seeds"],
        hparams={"l2": np.asarray(config["bn_l2"], np.float32)},
        num_epochs=config["bn_epochs"],
        batch_size=config["bn_batch_size"],
        eval_every=1,
        progress=progress,
    )
    h = jax.tree.map(np.asarray, res.history)
    x = jnp.asarray(ds[0][: config["bn_batch_size"]])
    y = jnp.asarray(ds[1][: config["bn_batch_size"]])
    params0 = bn_init(jax.random.key(config["seed"]), d_in, config["bn_hidden"], classes)
    trained = jax.tree.map(lambda a: a[0, 0], res.params)  # no penalty, seed 0
    checks = {
        "init": scale_invariance(params0, x, config["bn_scales"]),
        "trained": scale_invariance(trained, x, config["bn_scales"]),
        "init, default eps=1e-5": scale_invariance(params0, x, config["bn_scales"], eps=1e-5),
    }
    # Scale invariance makes the gradient orthogonal to W: <∇_W L, W> = 0.
    cos_gw = float(_cos_grad_w(params0, x, y))
    return {
        "epoch": h["epoch"][0, 0],
        "w_norm": h["track"]["w_norm"],  # (H, S, T)
        "eff_lr": h["track"]["eff_lr"],
        "test_accuracy": h["test_accuracy"],
        "train_loss": h["train_loss"],
        "max_abs_logit_diff": checks,
        "cos_grad_w": cos_gw,
    }


# ----------------------------------------------------------------------------- (c)


def _adam_problem(config) -> train.Problem:
    widths, lr = config["adam_widths"], config["adam_lr"]
    mask = transforms.default_decay_mask

    def init(key, hp):
        del hp
        return models.mlp_init(key, widths, init="he")

    def loss(params, x, y, *, key, hp):
        del key
        logits = models.mlp_apply(params, x, activation="relu")
        # L2 in the loss: gradient l2 * θ on the weight matrices, rescaled by Adam.
        return losses.cross_entropy(logits, y) + 0.5 * hp["l2"] * penalties.l2(params, mask)

    def predict(params, x, hp):
        del hp
        return models.mlp_apply(params, x, activation="relu")

    def track(params, init_params, hp):
        del init_params, hp
        return {"w_norm": jnp.sqrt(penalties.l2(params, mask))}

    # AdamW: w <- w - lr * (adam_step + wd * w) on the weight matrices (optax convention).
    return train.Problem(
        init, loss, predict, lambda hp: transforms.adamw(lr, hp["wd"], mask=mask), track
    )


def _run_adam(config, ds, progress):
    lams = np.asarray(config["adam_lams"], np.float32)
    zero = np.zeros(1, np.float32)
    l2 = np.concatenate([zero, lams, np.zeros_like(lams)])
    wd = np.concatenate([zero, np.zeros_like(lams), lams])
    res = train.sweep(
        _adam_problem(config),
        ds,
        seeds=config["seeds"],
        hparams={"l2": l2, "wd": wd},
        num_epochs=config["adam_epochs"],
        batch_size=config["adam_batch_size"],
        eval_every=_eval_every(config["adam_epochs"]),
        progress=progress,
    )
    h = jax.tree.map(np.asarray, res.history)
    k = lams.size
    pick = {
        "Adam (λ=0)": slice(0, 1),
        "Adam + L2 in loss": slice(1, 1 + k),
        "AdamW": slice(1 + k, 1 + 2 * k),
    }
    return {
        "lams": lams,
        "epoch": h["epoch"][0, 0],
        **{
            name: {
                "test_accuracy": h["test_accuracy"][s, :, -1],
                "train_accuracy": h["train_accuracy"][s, :, -1],
                "w_norm": h["track"]["w_norm"][s, :, -1],
                "w_norm_curve": h["track"]["w_norm"][s],
            }
            for name, s in pick.items()
        },
    }


# ----------------------------------------------------------------------------- run


def run(config: dict, *, progress: bool = True) -> Outcome:
    """Run the three parts (four sweeps) and draw one 3 x 3 figure."""
    decays, dead = _run_dead(config, progress)
    ds = data.mnist1d(config["n_train"], config["n_test"], seed=config["seed"])
    bn = _run_bn(config, ds, progress)
    adam = _run_adam(config, ds, progress)
    seeds = config["seeds"]

    fig, axes = plotting.figure(3, 3, size=(4.3, 3.3))
    # ---- (a)
    colors = {"weights only": "tab:blue", "weights + biases": "tab:red"}
    xpos = np.arange(decays.size)
    for name, d in dead.items():
        total = d["dead_per_layer"][:, :, -1].sum(-1)  # (H, S)
        axes[0][0].errorbar(
            xpos,
            total.mean(1),
            yerr=total.std(1),
            marker="o",
            capsize=3,
            color=colors[name],
            label=f"decay on {name}",
        )
        axes[0][2].errorbar(
            xpos,
            d["test_accuracy"].mean(1),
            yerr=d["test_accuracy"].std(1),
            marker="o",
            capsize=3,
            color=colors[name],
            label=f"decay on {name}",
        )
    n_hidden = sum(config["dead_widths"][1:-1])
    for ax, label in (
        (axes[0][0], f"dead ReLU units (of {n_hidden})"),
        (axes[0][2], "test accuracy"),
    ):
        ax.set_xticks(xpos, [f"{v:g}" for v in decays], fontsize=8)
        ax.set_xlabel("decoupled decay strength λ (per step lr·λ·θ)")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    axes[0][0].set_title("(a) ReLUs dead on the whole train set, end of training", fontsize=10)
    axes[0][2].set_title("(a) two moons test accuracy", fontsize=10)
    j = decays.size - 1  # the strongest decay
    for name, d in dead.items():
        plotting.band(
            axes[0][1],
            d["epoch"],
            d["dead_per_layer"][j].sum(-1),
            color=colors[name],
            label=f"decay on {name}",
        )
    axes[0][1].set_xlabel("epoch")
    axes[0][1].set_ylabel("dead ReLU units")
    axes[0][1].set_title(f"(a) dead units during training, λ = {decays[j]:g}", fontsize=10)
    axes[0][1].legend(fontsize=8)

    # ---- (b)
    ep = bn["epoch"]
    bn_names = ["no penalty" if lam == 0 else f"L2 on W, λ={lam:g}" for lam in config["bn_l2"]]
    for i, name in enumerate(bn_names):
        plotting.band(axes[1][0], ep, bn["w_norm"][i], label=name)
        plotting.band(axes[1][1], ep, bn["eff_lr"][i], label=name)
        plotting.band(axes[1][2], ep, bn["test_accuracy"][i], label=name)
    diffs = bn["max_abs_logit_diff"]["trained"]
    axes[1][0].set_title("(b) ‖W‖ of the layer before batch norm", fontsize=10)
    axes[1][0].set_ylabel("‖W‖ (Frobenius)")
    axes[1][1].set_title("(b) effective learning rate η / ‖W‖²", fontsize=10)
    axes[1][1].set_ylabel("η / ‖W‖²")
    axes[1][1].set_yscale("log")
    axes[1][2].set_title(
        "(b) test accuracy; |f(cW) − f(W)| ≤ "
        f"{max(diffs.values()):.1e} (c = " + ", ".join(f"{c:g}" for c in config["bn_scales"]) + ")",
        fontsize=9,
    )
    axes[1][2].set_ylabel("test accuracy")
    for ax in axes[1]:
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)

    # ---- (c)
    lams = adam["lams"]
    c_colors = {"Adam + L2 in loss": "tab:orange", "AdamW": "tab:green"}
    for name, col in c_colors.items():
        r = adam[name]
        for ax, key_ in ((axes[2][0], "test_accuracy"), (axes[2][1], "w_norm")):
            ax.errorbar(
                lams,
                r[key_].mean(1),
                yerr=r[key_].std(1),
                marker="o",
                capsize=3,
                color=col,
                label=name,
            )
    base = adam["Adam (λ=0)"]
    for ax, key_ in ((axes[2][0], "test_accuracy"), (axes[2][1], "w_norm")):
        m, s = base[key_].mean(), base[key_].std()
        ax.axhline(m, color="grey", ls="--", lw=0.8, label="Adam, λ = 0")
        ax.axhspan(m - s, m + s, color="grey", alpha=0.15, lw=0)
        ax.set_xscale("log")
        ax.set_xlabel("λ (L2: loss + ½λ‖W‖²;  AdamW: weight_decay = λ)")
        ax.legend(fontsize=8)
    axes[2][0].set_ylabel("test accuracy")
    axes[2][0].set_title("(c) MNIST-1D test accuracy at the same λ", fontsize=10)
    axes[2][1].set_ylabel("‖weights‖ at the end")
    axes[2][1].set_yscale("log")
    axes[2][1].set_title("(c) final weight norm (matrices only)", fontsize=10)
    mid = int(np.argmin(np.abs(np.log(lams) - np.log(1e-1))))
    for name, col in c_colors.items():
        plotting.band(
            axes[2][2],
            adam["epoch"],
            adam[name]["w_norm_curve"][mid],
            color=col,
            label=f"{name}, λ={lams[mid]:g}",
        )
    plotting.band(
        axes[2][2], adam["epoch"], base["w_norm_curve"][0], color="grey", label="Adam, λ = 0"
    )
    axes[2][2].set_xlabel("epoch")
    axes[2][2].set_ylabel("‖weights‖")
    axes[2][2].set_title("(c) weight norm during training", fontsize=10)
    axes[2][2].legend(fontsize=8)
    fig.suptitle(f"Weight-decay pitfalls (mean ± std over {seeds} seeds)", fontsize=11)
    fig.tight_layout()

    # ---- numbers
    dead_final = {n: d["dead_per_layer"][:, :, -1] for n, d in dead.items()}  # (H, S, L)
    strong = decays.size - 1
    numbers = {
        "dead": {
            "decays": decays,
            **{
                n: {
                    "dead_final_per_layer": dead_final[n],
                    "dead_total_final": dead_final[n].sum(-1),
                    "dead_curve_total": d["dead_per_layer"].sum(-1),
                    "test_accuracy": d["test_accuracy"],
                    "train_accuracy": d["train_accuracy"],
                }
                for n, d in dead.items()
            },
            "epoch": dead["weights only"]["epoch"],
            "dead_unit_bias_mean": {n: d["dead_unit_bias_mean"] for n, d in dead.items()},
            "dead_unit_w_norm_mean": {n: d["dead_unit_w_norm_mean"] for n, d in dead.items()},
            "near_dead_total_final": {
                n: d["near_dead_per_layer"][:, :, -1].sum(-1) for n, d in dead.items()
            },
        },
        "batch_norm": bn,
        "adam": adam,
    }
    tot = {n: v.sum(-1) for n, v in dead_final.items()}
    near = {n: d["near_dead_per_layer"][:, :, -1].sum(-1) for n, d in dead.items()}
    bn_final = bn["w_norm"][:, :, -1]
    headline = {
        f"(a) dead units, λ={decays[strong]:g}, decay on weights only": mean_std(
            tot["weights only"][strong], ".4g", ".2g"
        ),
        f"(a) dead units, λ={decays[strong]:g}, decay on weights + biases": mean_std(
            tot["weights + biases"][strong], ".4g", ".2g"
        ),
        "(b) max |f(cW) − f(W)| (trained, c=0.1, 10)": float(max(diffs.values())),
        "(b) final ‖W‖, no penalty": mean_std(bn_final[0], ".4g", ".2g"),
        "(b) final ‖W‖, L2": mean_std(bn_final[-1], ".4g", ".2g"),
        f"(c) test acc, Adam+L2, λ={lams[mid]:g}": mean_std(
            adam["Adam + L2 in loss"]["test_accuracy"][mid], ".4g", ".2g"
        ),
        f"(c) test acc, AdamW, λ={lams[mid]:g}": mean_std(
            adam["AdamW"]["test_accuracy"][mid], ".4g", ".2g"
        ),
        f"(c) final ‖W‖, Adam+L2, λ={lams[mid]:g}": mean_std(
            adam["Adam + L2 in loss"]["w_norm"][mid], ".4g", ".2g"
        ),
        f"(c) final ‖W‖, AdamW, λ={lams[mid]:g}": mean_std(
            adam["AdamW"]["w_norm"][mid], ".4g", ".2g"
        ),
    }
    notes = [
        "(a) Dead = ReLU output exactly 0 for all training points, summed over both hidden "
        "layers. Mean dead units per λ " + ", ".join(f"{v:g}" for v in decays) + ": weights "
        "only " + ", ".join(f"{v:.1f}" for v in tot["weights only"].mean(1)) + "; weights + "
        "biases " + ", ".join(f"{v:.1f}" for v in tot["weights + biases"].mean(1)) + " ("
        f"{tot['weights only'].mean(1)[0]:.1f} are dead from initialisation).",
        "(a) The claim that decaying biases kills ReLU units is NOT reproduced here: keeping "
        "biases out of the decay gives as many or more dead units. At λ = "
        f"{decays[strong]:g} the units dead at the end have incoming-weight norm "
        f"{dead['weights only']['dead_unit_w_norm_mean'][strong]:.3g} and bias "
        f"{dead['weights only']['dead_unit_bias_mean'][strong]:.3g} (weights only) vs "
        f"{dead['weights + biases']['dead_unit_w_norm_mean'][strong]:.3g} and "
        f"{dead['weights + biases']['dead_unit_bias_mean'][strong]:.3g} (weights + biases): "
        "strong decay shrinks the incoming weights of units the loss does not need towards 0, "
        "so their output becomes relu(b): with undecayed biases every such unit with b < 0 "
        "is exactly dead for good, while with decayed biases w and b shrink together and "
        "the unit keeps the sign pattern it had. Counting 'near-dead' units too (largest "
        "output < 1% of the layer's largest) gives weights only "
        + ", ".join(f"{v:.1f}" for v in near["weights only"].mean(1))
        + " vs weights + "
        "biases " + ", ".join(f"{v:.1f}" for v in near["weights + biases"].mean(1)) + ".",
        "(b) Batch norm eps = 1e-8 (the only term breaking scale invariance); with the default "
        "eps = 1e-5 the logit difference at init is up to "
        f"{max(bn['max_abs_logit_diff']['init, default eps=1e-5'].values()):.1e}. "
        f"cos(∇_W L, W) at init = {bn['cos_grad_w']:.1e}. Evaluation uses the batch "
        "statistics of the whole evaluated set.",
        "(c) Final test accuracy per λ "
        + ", ".join(f"{v:g}" for v in lams)
        + ": Adam+L2 "
        + ", ".join(f"{v:.3f}" for v in adam["Adam + L2 in loss"]["test_accuracy"].mean(1))
        + "; AdamW "
        + ", ".join(f"{v:.3f}" for v in adam["AdamW"]["test_accuracy"].mean(1))
        + f"; Adam λ=0 {adam['Adam (λ=0)']['test_accuracy'].mean():.3f}. Final weight norms: "
        "Adam+L2 "
        + ", ".join(f"{v:.3g}" for v in adam["Adam + L2 in loss"]["w_norm"].mean(1))
        + "; AdamW "
        + ", ".join(f"{v:.3g}" for v in adam["AdamW"]["w_norm"].mean(1))
        + ".",
        "(c) Matching: the same λ is used as the L2 coefficient (loss + ½λ‖W‖², gradient λW "
        "fed through Adam's normalisation) and as AdamW's weight_decay (update − lr·λ·W, not "
        "normalised); the two coincide for SGD. Weight matrices only in both, biases free.",
    ]
    return Outcome(fig, numbers, headline, notes)
