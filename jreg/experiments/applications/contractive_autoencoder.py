"""Contractive autoencoder (Rifai et al. 2011) × input noise on MNIST digits.

A sigmoid encoder ``h(x) = σ(x W + b)`` (784 → 128) and a sigmoid decoder
``x̂ = σ(h W' + b')`` (untied) trained on the summed squared reconstruction error plus
``λ ‖J_h(x)‖²_F``, the batch mean of the squared Frobenius norm of the encoder's input
Jacobian, in Rifai et al.'s closed form for a sigmoid encoder,
``Σ_j (h_j(1 − h_j))² Σ_i W_ij²`` (equal to
:func:`jreg.regularizers.activity.jacobian_penalty`; the test checks it), over the whole
batch. Adam with a cosine-annealed learning rate, trained until the training curve is
flat (the relative change of the training error over the last tenth of training is
computed and compared with a stated threshold). Input noise of std σ is added
to the TRAINING inputs only (``x + σ ε``, ε ~ N(0, I), no clipping) while the target
stays the clean image: σ > 0 is a denoising autoencoder (Vincent et al. 2008), and the
contractive penalty is evaluated at the noisy input. λ × σ × seeds run in one vmapped
sweep. Per (λ, σ), on the test images: clean reconstruction error, ‖J‖²_F, the contraction
ratio ``‖h(x + ε) − h(x)‖ / ‖ε‖`` (ε ~ N(0, s² I)), reconstruction error of noisy test
inputs (noise σ) against the clean image, and the accuracy of a linear probe on the codes
fitted on few labelled training images (closed-form one-vs-rest ridge,
:func:`jreg.analysis.linear.ridge`). The survey's claim tested: the best λ grows with σ.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jreg import data, tasks
from jreg.analysis import linear, metrics
from jreg.core import streams, train
from jreg.experiments import kit
from jreg.experiments.kit import mean_std
from jreg.nn import models, nets
from jreg.util import checks

DESCRIPTION = (
    "MNIST digits, sigmoid autoencoder 784-128-784: contractive penalty λ‖J‖²_F swept × "
    "training-input noise σ; reconstruction, ‖J‖²_F, contraction, few-label linear probe."
)


def get_config(quick: bool = False) -> dict:
    """Full size: 2,000 / 1,000 digits, 3 seeds; quick: 500 / 300, 1 seed, 32 codes."""
    full = {
        "seed": 0,  # digits chosen and ordered by this key
        "seeds": 3,
        "n_train": 2000,
        "n_test": 1000,
        "hidden": 128,
        "lambdas": (0.0, 0.3, 1.0, 3.0),
        "noises": (0.0, 0.25, 0.5),  # σ of training-input noise
        "learning_rate": 1e-2,  # Adam's, cosine-annealed to 0 over training
        "batch_size": 50,
        "num_epochs": 60,  # to convergence (checked: see "converged_below")
        "eval_epochs": 3,  # training-curve resolution
        # Converged: the clean training reconstruction error changes by less than this
        # fraction over the last tenth of training (every config, mean over seeds).
        "converged_below": 0.01,
        "memory_budget_mib": 512,  # configs per compiled call (train.sweep's memory_budget)
        "contraction_std": 0.1,  # s of the test perturbation of the contraction ratio
        "probe_labels": 100,  # labelled training images for the probe
        "probe_ridge": 1.0,  # α of the probe's ridge
    }
    small = {"seeds": 1, "n_train": 500, "n_test": 300, "hidden": 32, "num_epochs": 20,
             "eval_epochs": 2}  # fmt: skip
    return kit.sized(
        quick, full, quick_overrides={**small, "lambdas": (0.0, 1.0, 3.0), "noises": (0.0, 0.5)}
    )


def _encode(params, x):
    return jax.nn.sigmoid(x @ params[0]["w"] + params[0]["b"])


def jacobian_sq_norm(params, x):
    """Batch mean of ``‖∂h/∂x‖²_F`` of the sigmoid encoder in closed form (Rifai et al.
    2011): ``Σ_j (h_j (1 − h_j))² Σ_i W_ij²``."""
    h = _encode(params, x)
    return jnp.mean(jnp.square(h * (1 - h)) @ jnp.sum(jnp.square(params[0]["w"]), 0))


def _autoencoder(in_dim: int, hidden: int) -> nets.Model:
    """Sigmoid encoder / sigmoid decoder; ``aux["codes"]`` (B, hidden)."""

    def init(key, hp):
        enc, dec = jax.random.split(key)
        layers = [models.mlp_init(enc, (in_dim, hidden))[0]]
        return layers + [models.mlp_init(dec, (hidden, in_dim))[0]], {}

    def apply(params, state, x, *, key, train, hp):
        h = _encode(params, x)
        out = jax.nn.sigmoid(h @ params[1]["w"] + params[1]["b"])
        return out, state, {"codes": h}

    return nets.Model(init, apply)


def compute(config: dict, run: kit.Run = kit.QUIET) -> dict:
    """Train every λ × σ × seed in one sweep; measure the codes of the final encoders.

    Arrays below have shape (L, N, S): λ (``lambdas``), σ (``noises``), seed.
    """
    key = checks.seed_key(config["seed"])
    k_data, k_eps = jax.random.split(key)
    x_tr, y_tr, x_te, y_te = data.mnist_digits(config["n_train"], config["n_test"], key=k_data)

    def contractive(params, batch, aux):
        return jacobian_sq_norm(params, batch["x"])

    def noise(key, x, hp):
        return x + hp["noise"] * jax.random.normal(key, x.shape, x.dtype)

    model = _autoencoder(x_tr.shape[1], config["hidden"])
    stream, splits = streams.epochs(config["batch_size"]), tasks.split_data(x_tr, y_tr, x_te, y_te)
    steps = config["num_epochs"] * stream.block_size(splits)
    task = tasks.supervised(
        model,
        optimizer=optax.adam(optax.cosine_decay_schedule(config["learning_rate"], steps)),
        loss="reconstruction",
        regularizers={"contractive": contractive},
        hparams={"noise": 0.0},
        augment=noise,
    )
    lambdas = np.asarray(config["lambdas"], np.float32)
    noises = np.asarray(config["noises"], np.float32)
    hps = train.grid(contractive=lambdas, noise=noises)
    res = run.sweep(
        task, splits, stream=stream, seeds=config["seeds"],
        epochs=config["num_epochs"], eval_epochs=config["eval_epochs"], hparams=hps,
        memory_budget=config["memory_budget_mib"] * 2**20,
    )  # fmt: skip
    shape = (len(lambdas), len(noises), -1)
    x_te, y_te = jnp.asarray(x_te), jnp.asarray(y_te)
    eps = jax.random.normal(k_eps, x_te.shape)  # one draw shared by every config
    n_probe = config["probe_labels"]

    def measure(params, sigma):
        enc = lambda v: _encode(params, v)
        h = enc(x_te)
        dh = enc(x_te + config["contraction_std"] * eps) - h
        ratio = jnp.linalg.norm(dh, axis=1) / jnp.linalg.norm(
            config["contraction_std"] * eps, axis=1
        )
        noisy = model.apply(params, {}, x_te + sigma * eps, key=None, train=False, hp={})[0]
        codes = enc(jnp.asarray(x_tr[:n_probe]))
        onehot = jax.nn.one_hot(jnp.asarray(y_tr[:n_probe]), 10)
        fits = jax.vmap(lambda t: linear.ridge(codes, t, config["probe_ridge"]), 1)(onehot)
        scores = h @ fits.coef.T + fits.intercept
        return {
            "jacobian_sq_norm": jacobian_sq_norm(params, x_te),
            "contraction_ratio": jnp.mean(ratio),
            "noisy_reconstruction": jnp.mean(jnp.sum(jnp.square(noisy - x_te), axis=1)),
            "probe_accuracy": metrics.accuracy(scores, y_te),
        }

    sig = jnp.asarray(hps["noise"])[:, None] * jnp.ones(res.state["params"][0]["b"].shape[:2])
    flat = jax.tree.map(lambda v: v.reshape(-1, *v.shape[2:]), (res.state["params"], sig))
    out = jax.jit(lambda f: jax.lax.map(lambda a: measure(*a), f))(flat)  # one config at a time
    m = {k: np.asarray(v).reshape(shape) for k, v in out.items()}
    m["reconstruction"] = res.history["test_loss"][..., -1].reshape(shape)
    curve = res.history["train_loss"]  # (L·N, S, T): clean training reconstruction error
    last = int(np.argmin(np.abs(res.history["epoch"][0, 0] - 0.9 * config["num_epochs"])))
    change = (curve[..., last] - curve[..., -1]) / curve[..., -1]  # last tenth, relative
    m["relative_change_last_tenth"] = change.reshape(shape)
    best_probe = lambdas[np.argmax(m["probe_accuracy"].mean(-1), axis=0)]  # (N,)
    best_noisy = lambdas[np.argmin(m["noisy_reconstruction"].mean(-1), axis=0)]
    numbers = {"lambdas": lambdas, "noises": noises, **m, "epoch": res.history["epoch"][0, 0]}
    numbers["train_curve"] = curve.reshape(len(lambdas), len(noises), *curve.shape[1:])
    worst = float(np.abs(change.mean(-1)).max())  # the least converged config (seed mean)
    converged = worst < config["converged_below"]
    numbers["best_lambda_by_probe"] = best_probe
    numbers["best_lambda_by_noisy_reconstruction"] = best_noisy
    cell = lambda i, j: f"λ={lambdas[i]:g}, σ={noises[j]:g}"
    cells = [(i, j) for i in range(len(lambdas)) for j in range(len(noises))]
    numbers["headline"] = {
        "converged (max |Δ| over last 10 %)": f"{converged} ({worst:.2%})",
        **{f"probe acc, {cell(i, j)}": mean_std(m["probe_accuracy"][i, j]) for i, j in cells},
        **{f"‖J‖²_F, {cell(i, j)}": mean_std(m["jacobian_sq_norm"][i, j], ".3g") for i, j in cells},
        **{f"best λ (probe), σ={s:g}": f"{b:g}" for s, b in zip(noises, best_probe, strict=True)},
        **{
            f"best λ (noisy recon), σ={s:g}": f"{b:g}"
            for s, b in zip(noises, best_noisy, strict=True)
        },
    }
    grows = lambda b: bool(np.all(np.diff(b) >= 0) and b[-1] > b[0])
    j0 = m["jacobian_sq_norm"][0].mean(-1)  # λ = 0, per σ
    j_drop = m["jacobian_sq_norm"][-1].mean() / m["jacobian_sq_norm"][0].mean()
    numbers["notes"] = [
        f"Training to convergence: over the last tenth of the {config['num_epochs']} epochs "
        "the clean training reconstruction error changes by at most "
        f"{worst:.2%} (mean over seeds, worst λ × σ; threshold "
        f"{config['converged_below']:.0%}): {'converged' if converged else 'NOT converged'}.",
        f"MNIST digits (key {config['seed']}): {config['n_train']} train / {config['n_test']} "
        f"test, pixels in [0, 1]; {res.history['step'].shape[1]} seeds; σ is the std of "
        "Gaussian noise added to each training input pixel (unclipped; clean target; the "
        "penalty is taken at the noisy input, closed form, whole batch of "
        f"{config['batch_size']}); Adam {config['learning_rate']:g}, cosine-annealed to 0 "
        f"over {config['num_epochs']} epochs.",
        f"λ={lambdas[-1]:g} multiplies ‖J‖²_F on the test images by {j_drop:.3g} relative "
        "to λ=0 (mean over σ and seeds).",
        f"Without the penalty (λ=0), training noise σ={noises[-1]:g} changes ‖J‖²_F from "
        f"{j0[0]:.3g} (σ=0) to {j0[-1]:.3g} on the test images: input noise alone "
        f"{'contracts' if j0[-1] < j0[0] else 'does not contract'} the encoder.",
        f"Best λ by probe accuracy ({n_probe} labels, ridge α={config['probe_ridge']:g}) per "
        f"σ={[f'{s:g}' for s in noises]}: {[f'{b:g}' for b in best_probe]}; "
        f'"more noise calls for a larger λ" {"holds" if grows(best_probe) else "does not hold"}'
        " by this criterion.",
        f"Best λ by reconstruction of noisy test inputs (noise σ, clean target) per σ: "
        f"{[f'{b:g}' for b in best_noisy]}; the claim "
        f"{'holds' if grows(best_noisy) else 'does not hold'} by this criterion.",
    ]
    return numbers


def figure(numbers: dict, config: dict):
    """Per metric: value vs λ (symlog), one line per σ, mean ± std over seeds; the
    training curves (clean training reconstruction error) of every λ × σ."""
    lambdas, noises = np.asarray(numbers["lambdas"]), np.asarray(numbers["noises"])
    keys = (
        ("reconstruction", "clean test reconstruction error"),
        ("noisy_reconstruction", "noisy-input (σ) reconstruction error"),
        ("jacobian_sq_norm", "‖J_h(x)‖²_F (test)"),
        ("contraction_ratio", "‖h(x+ε) − h(x)‖ / ‖ε‖"),
        ("probe_accuracy", f"linear probe accuracy ({config['probe_labels']} labels)"),
    )
    fig, axes = kit.panels(len(keys) + 1, ncols=3, size=(4.2, 3.8))
    for ax, (k, lab) in zip(axes, keys, strict=False):
        for j, s in enumerate(noises):
            kit.seeds_errorbar(
                ax, lambdas, np.asarray(numbers[k])[:, j], label=f"σ={s:g}", dots=False
            )
        ax.set_xscale("symlog", linthresh=float(lambdas[lambdas > 0].min()))
        ax.set_xticks(lambdas, [f"{v:g}" for v in lambdas])
        ax.set(xlabel="contractive weight λ", ylabel=lab)
    axes[0].legend()
    curves = np.asarray(numbers["train_curve"]).mean(2)  # (L, N, T), mean over seeds
    for i, lam in enumerate(lambdas):
        for j, s in enumerate(noises):
            axes[-1].plot(numbers["epoch"], curves[i, j], lw=1, label=f"λ={lam:g}, σ={s:g}")
    axes[-1].axvspan(0.9 * numbers["epoch"][-1], numbers["epoch"][-1], color="gray", alpha=0.2)
    axes[-1].set(xlabel="epoch (shaded: last tenth)", ylabel="train reconstruction error",
                 yscale="log")  # fmt: skip
    axes[-1].legend(fontsize=5, ncols=2)
    fig.tight_layout()
    return fig
