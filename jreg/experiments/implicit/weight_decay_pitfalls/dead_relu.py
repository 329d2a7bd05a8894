"""Part (a): decaying biases too vs decaying only weight matrices, and dead ReLU units.

A ReLU MLP on two moons trained with SGD and decoupled decay (:func:`sgdw_bias_switch`);
a unit is *dead* when its output is 0 on every training example.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jreg import tasks
from jreg.core import train
from jreg.experiments import kit
from jreg.nn import nets
from jreg.regularizers import transforms

from . import _common

SETTINGS = ("weights only", "weights + biases")  # bias_decay = 0, 1


def _hidden(params, x: jax.Array):
    """Each hidden layer's parameters and ReLU outputs on ``x``, first to last."""
    h = x
    for layer in params[:-1]:
        h = jax.nn.relu(h @ layer["w"] + layer["b"])
        yield layer, h


def dead_units(params, x: jax.Array) -> jax.Array:
    """Number of hidden ReLU units whose output is 0 on every row of ``x``, per layer.

    Args:
      params: MLP parameters (:func:`jreg.nn.models.mlp_init`).
      x: inputs ``(N, D)`` (the whole training set).

    Returns:
      int32 array ``(L,)``, one count per hidden layer.
    """
    count = lambda h: jnp.sum(jnp.all(h == 0, axis=0)).astype(jnp.int32)
    return jnp.stack([count(h) for _, h in _hidden(params, x)])


def near_dead_units(params, x: jax.Array, rel: float = 0.01) -> jax.Array:
    """Hidden units whose largest output on ``x`` is below ``rel`` times the layer's largest.

    Counts exactly dead units too; catches units that weight decay shrank towards zero
    without their output becoming exactly 0. Returns int32 ``(L,)``.
    """
    count = lambda peak: jnp.sum(peak <= rel * peak.max()).astype(jnp.int32)
    return jnp.stack([count(h.max(axis=0)) for _, h in _hidden(params, x)])


def _is_bias(params):
    return jax.tree.map(lambda m: not m, transforms.default_decay_mask(params))


def sgdw_bias_switch(lr: float, decay, bias_decay) -> optax.GradientTransformation:
    """SGD with decoupled decay ``lr·decay·θ`` on matrices and ``lr·decay·bias_decay·θ`` on biases.

    Two :func:`jreg.regularizers.transforms.decoupled_weight_decay` transforms with complementary
    static
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
    per = [
        (jnp.all(h == 0, axis=0), layer["b"], jnp.linalg.norm(layer["w"], axis=0))
        for layer, h in _hidden(params, x)
    ]
    return tuple(jnp.concatenate(a) for a in zip(*per, strict=True))


def compute(config: dict, run: kit.Run) -> dict:
    """One sweep over (bias decay on/off) x λ x seeds; dead units over training.

    Returns ``decays`` (K,) and per setting: dead / near-dead counts per hidden layer over
    training (K, S, T, L), final accuracies (K, S), and the mean bias and incoming-weight
    norm of the units dead at the end (K,).
    """
    ds = _common.moons(config)
    x_tr = jnp.asarray(ds["train"]["x"])
    decays = np.asarray(config["dead_decays"], np.float32)
    lr = config["dead_lr"]
    task = tasks.supervised(
        nets.mlp(config["dead_widths"], activation="relu", init="he"),
        optimizer=lambda hp: sgdw_bias_switch(lr, hp["decay"], hp["bias_decay"]),
        hparams={"decay": 0.0, "bias_decay": 0.0},
        track=lambda state, hp: {
            "dead": dead_units(state["params"], x_tr),
            "near_dead": near_dead_units(state["params"], x_tr),
        },
    )
    grid = train.grid(bias_decay=[0.0, 1.0], decay=decays)  # bias_decay slowest
    res, step = _common.sweep(run, task, ds, config, "dead", grid)
    sizes = dict.fromkeys(SETTINGS, decays.size)
    stats = jax.vmap(jax.vmap(_dead_unit_stats, in_axes=(0, None)), in_axes=(0, None))
    units = zip(("dead", "bias", "w_norm"), stats(res.state["params"], x_tr), strict=True)
    units = _common.arms({k: np.asarray(v) for k, v in units}, sizes)  # (K, S, U) per arm
    out = {"decays": decays, "step": step}
    for name, h in _common.arms(res.history, sizes).items():
        is_dead = units[name]["dead"]
        n_dead = is_dead.sum(axis=(1, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = lambda v: np.where(n_dead > 0, (v * is_dead).sum(axis=(1, 2)) / n_dead, np.nan)
            b_mean, w_mean = mean(units[name]["bias"]), mean(units[name]["w_norm"])
        out[name] = {
            "dead_per_layer": h["dead"],  # (K, S, T, L)
            "near_dead_per_layer": h["near_dead"],
            "dead_final_per_layer": h["dead"][:, :, -1],
            "dead_total_final": h["dead"][:, :, -1].sum(-1),  # (K, S)
            "dead_curve_total": h["dead"].sum(-1),  # (K, S, T)
            "near_dead_total_final": h["near_dead"][:, :, -1].sum(-1),
            **_common.final(h, "test_accuracy", "train_accuracy"),
            "dead_unit_bias_mean": b_mean,
            "dead_unit_w_norm_mean": w_mean,
        }
    return out


def notes(dead: dict) -> list[str]:
    """Sentences computed from :func:`compute`'s numbers."""
    decays = dead["decays"]
    only, both = dead["weights only"], dead["weights + biases"]
    t_only, t_both = only["dead_total_final"].mean(1), both["dead_total_final"].mean(1)
    n_only, n_both = only["near_dead_total_final"].mean(1), both["near_dead_total_final"].mean(1)
    s = decays.size - 1
    fmt = lambda v, f=".1f": ", ".join(f"{x:{f}}" for x in v)
    more = "more" if t_both[s] > t_only[s] else "fewer" if t_both[s] < t_only[s] else "as many"
    return [
        "(a) Dead = ReLU output exactly 0 for all training points, summed over the hidden "
        f"layers. Mean dead units per λ {fmt(decays, 'g')}: weights only {fmt(t_only)}; "
        f"weights + biases {fmt(t_both)} ({t_only[0]:.1f} dead at λ = 0).",
        f"(a) At λ = {decays[s]:g} decaying biases too gives {more} dead units than decaying "
        f"weights only ({t_both[s]:.1f} vs {t_only[s]:.1f}). Units dead at the end have "
        f"incoming-weight norm {only['dead_unit_w_norm_mean'][s]:.3g} and bias "
        f"{only['dead_unit_bias_mean'][s]:.3g} (weights only) vs "
        f"{both['dead_unit_w_norm_mean'][s]:.3g} and {both['dead_unit_bias_mean'][s]:.3g} "
        "(weights + biases).",
        "(a) Near-dead units (largest output < 1% of the layer's largest): weights only "
        f"{fmt(n_only)} vs weights + biases {fmt(n_both)}.",
    ]


def draw(axes, dead: dict, config: dict) -> None:
    """Three panels: final dead units vs λ, dead units over training, test accuracy vs λ."""
    decays = dead["decays"]
    colors = {"weights only": "tab:blue", "weights + biases": "tab:red"}
    xpos = np.arange(decays.size)
    for name in SETTINGS:
        d, kw = {k: np.asarray(v) for k, v in dead[name].items()}, {"color": colors[name]}
        for ax, v in ((axes[0], d["dead_total_final"]), (axes[2], d["test_accuracy"])):
            kit.seeds_errorbar(ax, xpos, v, label=f"decay on {name}", dots=False, **kw)
        kit.band(axes[1], dead["step"], d["dead_curve_total"][-1], label=f"decay on {name}", **kw)
    n_hidden = sum(config["dead_widths"][1:-1])
    for ax, label in ((axes[0], f"dead ReLU units (of {n_hidden})"), (axes[2], "test accuracy")):
        ax.set_xticks(xpos, [f"{v:g}" for v in decays], fontsize=8)
        ax.set_xlabel("decoupled decay strength λ (per step lr·λ·θ)")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    axes[0].set_title("(a) ReLUs dead on the whole train set, end of training", fontsize=10)
    axes[2].set_title("(a) two moons test accuracy", fontsize=10)
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("dead ReLU units")
    axes[1].set_title(f"(a) dead units during training, λ = {decays[-1]:g}", fontsize=10)
    axes[1].legend(fontsize=8)
