"""Weight decay on noisy two moons: L2 vs L1 (loss subgradient) vs L1 (proximal step).

Reference (blog section 2, appendix): MLP 2-64-64-2 tanh, SGD with power-law rate
(0.15, 1, 5e4), 1e4 epochs of B=32 on 250 two-moons points with 10% of the labels flipped.
Sweeps λ₂ (gradient λ₂θ, as the reference optimizer's ``lam * W``) and λ₁ (subgradient
λ₁·sign θ). We add a third arm the reference does not have: the same λ₁ applied as a
proximal (soft-threshold) step after SGD, which is what produces *exact* zeros.

All three arms are ONE task: the objective adds ``weight_decay · ½‖θ‖²`` and ``l1 · ‖θ‖₁``
(:func:`jreg.tasks.supervised` regularizers) and the optimizer is ``chain(sgd,
proximal_l1(l1_prox))`` (with strength 0 the prox is the identity), so every (arm, λ, seed)
trains in one vmapped sweep. The λ=0 model is shared by the three arms (trained once).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from matplotlib.figure import Figure

from jreg import analysis, data, tasks
from jreg.analysis import metrics
from jreg.experiments import kit, plotting
from jreg.experiments.kit import mean_std
from jreg.nn import nets
from jreg.regularizers import transforms
from jreg.tasks import schedules
from jreg.util import checks

DESCRIPTION = (
    "Two moons (250 pts, 10% flipped labels), MLP 2-64-64-2, SGD: L2 vs L1 (loss) vs "
    "L1 (proximal) sweeps; boundaries, hidden weight matrices, sparsity, accuracy."
)

ARMS = ("L2", "L1 (loss)", "L1 (prox)")
SYM = {"L2": "λ₂", "L1 (loss)": "λ₁", "L1 (prox)": "λ₁"}


def get_config(quick: bool = False) -> dict:
    """Reference setup (blog appendix): SGD, power law (0.15, 1, 5e4), 1e4 epochs, B=32."""
    full = {
        "seed": 0,  # data set (train draw, flips, test draw)
        "seeds": 5,  # model seeds (init + data order)
        "n_train": 250,
        "n_test": 2000,
        "noise": 0.1,  # std of the Gaussian position noise (sklearn make_moons units)
        "label_flip": 0.1,
        "widths": (2, 64, 64, 2),
        "lr": (0.15, 1.0, 5e4),  # lr0 / (1 + t/tau)^a written (lr0, a, tau)
        "num_epochs": 10_000,
        "batch_size": 32,
        "eval_every": 500,
        "lambda2": [0.0025 * i for i in range(9)],  # 0 ... 0.02
        "lambda1": [0.0005 * i for i in range(9)],  # 0 ... 0.004
        "show_lambda2": 0.01,  # weight-matrix panel and headline sparsity
        "show_lambda1": 0.002,
        "sparsity_tol": 1e-3,
        "grid_resolution": 150,
    }
    quick_sizes = {"num_epochs": 200, "eval_every": 50, "grid_resolution": 80}
    return kit.sized(quick, full, quick_overrides=quick_sizes)


def _hparams(lam2, lam1) -> tuple[dict, dict]:
    """Concatenate the three arms (float32 λs) into zipped (H,) arrays; λ=0 once (config 0).

    Returns ``(hparams, index)`` where ``index[arm]`` lists the config of each λ of that arm.
    """
    if lam2[0] != 0 or lam1[0] != 0:
        raise ValueError("the λ sweeps must start at 0 (the shared unregularized model).")
    rows = [(w, 0, 0) for w in lam2] + [(0, w, 0) for w in lam1[1:]] + [(0, 0, w) for w in lam1[1:]]
    hp = dict(zip(("weight_decay", "l1", "l1_prox"), np.asarray(rows, np.float32).T, strict=True))
    n2, n1 = len(lam2), len(lam1) - 1
    loss = n2 + np.arange(n1)
    index = {"L2": np.arange(n2), "L1 (loss)": np.r_[0, loss], "L1 (prox)": np.r_[0, loss + n1]}
    return hp, index


def compute(config: dict, run: kit.Run = kit.QUIET) -> dict:
    """Train all (arm, λ, seed) models as one sweep; boundaries, weights, sparsity.

    Numbers: per arm and λ, per-seed (9, S) test / train accuracy, fraction of small and
    of exactly-zero weights, logit gap and norm; accuracy curves; for the figure, seed 0's
    class-1 probability on an R x R grid per config and four hidden weight matrices.
    """
    key = checks.seed_key(config["seed"])
    moons = {k: config[k] for k in ("noise", "label_flip", "n_test")}
    x_tr, y_tr, x_te, y_te, flipped = data.two_moons_with_flips(key, config["n_train"], **moons)
    # offset=1: the reference optimizer increments its counter before computing the rate.
    sched = schedules.power_law(*config["lr"], offset=1)  # (lr0, a, tau)
    model = nets.mlp(config["widths"], activation="tanh")
    opt = lambda hp: optax.chain(optax.sgd(sched), transforms.proximal_l1(hp["l1_prox"], sched))
    penalties = {"weight_decay": tasks.HALF_L2, "l1": tasks.L1}
    task = tasks.supervised(model, optimizer=opt, regularizers=penalties, hparams={"l1_prox": 0.0})
    lam2, lam1 = (np.asarray(config[k], np.float32) for k in ("lambda2", "lambda1"))
    hp, index = _hparams(lam2, lam1)
    lams = {"L2": lam2, "L1 (loss)": lam1, "L1 (prox)": lam1}
    res = kit.epoch_sweep(run, task, tasks.split_data(x_tr, y_tr, x_te, y_te), config, hparams=hp)
    hist, params = res.history, res.state["params"]  # params: leaves (H, S, ...)
    logits = lambda p, x: model.apply(p, {}, x, key=None, train=False, hp={})[0]

    # ---- per-model numbers on the final parameters, shape (H, S)
    tol = config["sparsity_tol"]
    per_model = lambda p: {
        "logit_gap": analysis.mean_abs_logit_gap(logits(p, jnp.asarray(x_te))),
        "sparsity_all": metrics.weight_sparsity(p, tol),
        "sparsity_hidden": metrics.weight_sparsity(p[1]["w"], tol),
        "zeros_all": metrics.count_zeros(p),
        "zeros_hidden": metrics.count_zeros(p[1]["w"]),
        "norm": optax.tree.norm(p),
    }
    pm = kit.to_numpy(jax.vmap(jax.vmap(per_model))(params))
    n_all = sum(int(np.prod(w.shape[2:])) for w in jax.tree.leaves(params))
    pm["zero_frac_all"] = pm.pop("zeros_all") / n_all
    pm["zero_frac_hidden"] = pm.pop("zeros_hidden") / int(np.prod(params[1]["w"].shape[2:]))
    pm |= {k: hist[k][:, :, -1] for k in ("test_accuracy", "train_accuracy")}
    per_arm = {arm: {k: v[index[arm]] for k, v in pm.items()} for arm in ARMS}  # (9, S)

    # ---- decision boundaries of seed 0 for every config
    lo, hi = x_tr.min(0).astype(float) - 0.5, x_tr.max(0).astype(float) + 0.5
    grid = {"xlim": (lo[0], hi[0]), "ylim": (lo[1], hi[1]), "resolution": config["grid_resolution"]}
    seed0 = jax.tree.map(lambda w: w[:, 0], params)
    seed0_logits = lambda pts: jax.vmap(lambda p: logits(p, pts))(seed0)
    xx, yy, p1 = analysis.decision_grid(seed0_logits, **grid)  # p1 (H, R, R)
    i2 = int(np.argmin(np.abs(lam2 - config["show_lambda2"])))
    i1 = int(np.argmin(np.abs(lam1 - config["show_lambda1"])))
    shown = {"64×64 hidden W, no penalty": 0, f"L2 λ₂={lam2[i2]:.4g}": index["L2"][i2]}
    shown |= {f"{arm} λ₁={lam1[i1]:.4g}": index[arm][i1] for arm in ARMS[1:]}

    keys_ = ("test_accuracy", "train_accuracy", "sparsity_all", "sparsity_hidden")
    keys_ += ("zero_frac_all", "zero_frac_hidden", "logit_gap", "norm")
    mean_acc = {arm: per_arm[arm]["test_accuracy"].mean(axis=1) for arm in ARMS}
    best = {arm: int(np.argmax(mean_acc[arm])) for arm in ARMS}
    numbers = {
        "lambda": {arm: lams[arm] for arm in ARMS},
        "index": index,
        "per_seed": {arm: {k: per_arm[arm][k] for k in keys_} for arm in ARMS},
        "mean": {arm: {k: per_arm[arm][k].mean(axis=1) for k in keys_} for arm in ARMS},
        "std": {arm: {k: per_arm[arm][k].std(axis=1) for k in keys_} for arm in ARMS},
        "step": hist["step"][0, 0],
        "test_accuracy_curve": {arm: hist["test_accuracy"][index[arm]] for arm in ARMS},
        "train_accuracy_curve": {arm: hist["train_accuracy"][index[arm]] for arm in ARMS},
        "num_flipped": int(flipped.sum()),
        "num_params": n_all,
        "shown_index": {"lambda2": i2, "lambda1": i1},
        "best_index": best,
        "boundary_seed0": {"xx": xx, "yy": yy, "p1": np.round(p1, 3)},  # p1 (H, R, R)
        "hidden_weights_seed0": {n: np.asarray(params[1]["w"][h, 0]) for n, h in shown.items()},
        "train_points": {"x": x_tr, "y": y_tr, "flipped": flipped},
    }
    at = dict(zip(ARMS, (i2, i1, i1), strict=True))
    at_best = {arm: f"{SYM[arm]}={lams[arm][best[arm]]:.4g}" for arm in ARMS}
    best_acc = {arm: per_arm[arm]["test_accuracy"][best[arm]] for arm in ARMS}
    headline = {"test acc, λ=0": mean_std(per_arm["L2"]["test_accuracy"][0])}
    for arm in ARMS:
        headline[f"test acc, best {arm} ({at_best[arm]})"] = mean_std(best_acc[arm])
    headline["|logit gap| on test, λ=0"] = mean_std(per_arm["L2"]["logit_gap"][0])
    for arm in ARMS:
        tag = f"{arm} {SYM[arm]}={lams[arm][at[arm]]:.4g}"
        headline[f"frac |w|<{tol:g}, {tag}"] = mean_std(per_arm[arm]["sparsity_all"][at[arm]])
        headline[f"frac exact zeros, {tag}"] = mean_std(per_arm[arm]["zero_frac_all"][at[arm]])
    numbers["headline"] = headline
    zeros = {arm: per_arm[arm]["zero_frac_all"][at[arm]].mean() for arm in ARMS}
    most = max(zeros, key=zeros.get)
    numbers["notes"] = [
        f"Data: two_moons_with_flips(noise={config['noise']}, label_flip="
        f"{config['label_flip']}) with key {config['seed']}: {int(flipped.sum())} of "
        f"{config['n_train']} training labels flipped (an exact fraction; the reference flips "
        f"each label with probability {config['label_flip']}); test: {config['n_test']} fresh "
        "clean points.",
        "Seeds vary initialisation and minibatch order on one fixed data set.",
        "L2 adds λ₂θ to the gradient and L1 (loss) adds λ₁·sign θ (all parameters incl. "
        "biases), as the reference optimizer. L1 (prox) soft-thresholds after each SGD step "
        "with threshold lr_t·λ₁ (jreg.regularizers.transforms.proximal_l1); not in the reference.",
        f"Sparsity counts all {n_all} parameters; numbers['mean'] also has the 64×64 "
        "hidden-to-hidden matrix alone (sparsity_hidden, zero_frac_hidden).",
        "The λ=0 model is trained once and shared by the three arms. Boundary panels show "
        "seed 0 and its test accuracy; the curves and the headline average the seeds.",
        "Fraction of exactly-zero parameters at the shown λ: "
        + ", ".join(f"{arm}: {z:.3f}" for arm, z in zeros.items())
        + f"; the most exact zeros come from {most}.",
        "Best mean test accuracy per arm: "
        + ", ".join(f"{arm} {mean_acc[arm][best[arm]]:.4f} at {at_best[arm]}" for arm in ARMS)
        + f" (λ=0: {mean_acc['L2'][0]:.4f}).",
    ]
    return numbers


def figure(numbers: dict, config: dict):
    """Boundaries of every (arm, λ) for seed 0, four hidden weight matrices, λ curves."""
    index, lams, per_seed = numbers["index"], numbers["lambda"], numbers["per_seed"]
    bd, pts = numbers["boundary_seed0"], numbers["train_points"]
    xx, yy, p1 = (np.asarray(bd[k]) for k in ("xx", "yy", "p1"))
    x_tr, y_tr, flipped = (np.asarray(pts[k]) for k in ("x", "y", "flipped"))
    tol, n_lam = config["sparsity_tol"], len(lams["L2"])
    fig = Figure(figsize=(2.0 * n_lam, 2.0 * 3 + 3.2))
    outer = fig.add_gridspec(2, 1, height_ratios=[3 * 1.9, 3.0], hspace=0.18, right=0.9)
    top = outer[0].subgridspec(3, n_lam, wspace=0.05, hspace=0.35)
    box = {"facecolor": "white", "alpha": 0.8, "pad": 1.5, "lw": 0}
    for r, arm in enumerate(ARMS):
        for c in range(n_lam):
            ax = fig.add_subplot(top[r, c])
            cs = plotting.boundary(
                ax, xx, yy, p1[index[arm][c]], x_tr, y_tr, flipped=flipped,
                title=f"{SYM[arm]}={lams[arm][c]:.4g}",
            )  # fmt: skip
            acc = per_seed[arm]["test_accuracy"][c][0]
            ax.text(0.03, 0.04, f"test acc {acc:.3f}", transform=ax.transAxes, fontsize=7, bbox=box)
        fig.axes[r * n_lam].set_ylabel(arm, fontsize=11, fontweight="bold")
    fig.axes[n_lam - 1].legend(loc="upper right", fontsize=6, framealpha=0.8)
    top_pos = fig.axes[n_lam - 1].get_position()
    cax = fig.add_axes([0.915, top_pos.y0 - 2 * top_pos.height, 0.008, 2 * top_pos.height])
    fig.colorbar(cs, cax=cax, label="p(class 1)")

    bottom = outer[1].subgridspec(1, 7, wspace=0.75)
    for j, (name, w) in enumerate(numbers["hidden_weights_seed0"].items()):
        ax, w = fig.add_subplot(bottom[0, j]), np.asarray(w)
        m = float(np.abs(w).max()) or 1.0
        im = ax.imshow(w, cmap="RdBu_r", vmin=-m, vmax=m, interpolation="nearest")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
        small = f"|w|<{tol:g}: {np.mean(np.abs(w) < tol):.1%}, exact 0: {np.mean(w == 0):.1%}"
        ax.set_title(f"{name}\n{small}", fontsize=8)
        ax.set_xlabel("layer-2 unit", fontsize=8)
        ax.set_ylabel("layer-1 unit", fontsize=8, labelpad=1)
        ax.tick_params(labelsize=6)

    xs = np.arange(n_lam)
    ticks = [f"{a_:.4g}\n{b_:.4g}" for a_, b_ in zip(lams["L2"], lams["L1 (loss)"], strict=True)]
    curves = {"sparsity_all": f"fraction |w| < {tol:g}", "zero_frac_all": "fraction exact zeros"}
    curves = {k: f"{v} (all params)" for k, v in curves.items()}
    curves["test_accuracy"] = "test accuracy (fresh clean moons)"
    for j, (k, label) in enumerate(curves.items()):
        ax = fig.add_subplot(bottom[0, 4 + j])
        for arm in ARMS:
            plotting.band(ax, xs, np.asarray(per_seed[arm][k]).T, label=arm, marker="o", ms=3)
        ax.set_xticks(xs[::2], ticks[::2], fontsize=6)
        ax.set_xlabel("λ₂ (L2, top) / λ₁ (L1, bottom)", fontsize=8)
        ax.set_title(label, fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    fig.axes[-3].legend(fontsize=7)
    n_seeds = np.asarray(per_seed["L2"]["test_accuracy"]).shape[1]
    title = (
        f"Two moons, {config['n_train']} train points (noise {config['noise']}), "
        f"{config['label_flip']:.0%} labels flipped (gold rings); boundaries: seed 0; "
        f"curves: mean ± std over {n_seeds} seeds; {config['num_epochs']} epochs"
    )
    fig.suptitle(title, fontsize=11, y=0.995)
    return fig
