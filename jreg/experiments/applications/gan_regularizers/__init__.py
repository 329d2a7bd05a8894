"""GAN regularizers on 2-D Gaussian mixtures (mode coverage) and on the Dirac-GAN.

Mixtures (the toys of Metz et al. 2017, VEEGAN (Srivastava et al. 2017), PacGAN and
Gulrajani et al. 2017): a ring of 8 Gaussians of radius 2 with σ = 0.02, and a 5 × 5 grid
of 25 Gaussians at {-4, -2, 0, 2, 4}² with σ = 0.05. MLP generator (2-D latent) and
discriminator, ReLU, Adam; arms:
* non-saturating GAN with R1 on real data, γ swept (γ = 0 is the unregularized GAN),
  ``(γ/2) E‖∇D(x)‖²`` (:func:`jreg.regularizers.activity.r1_penalty`; Mescheder et al. 2018);
* WGAN-GP, λ swept, 5 critic steps per generator step
  (:func:`jreg.regularizers.activity.gradient_penalty`);
* non-saturating GAN whose discriminator optimizer ends with a projection of every weight
  matrix onto σ_max ≤ c (:func:`jreg.regularizers.spectral.spectral_norm_constraint`, power
  iteration; the hard-constraint form of spectral normalization, Miyato et al. 2018), c swept.
Metrics (:func:`jreg.analysis.metrics.mode_coverage`, VEEGAN's definitions) on 2,500 samples
from a fixed latent batch at every evaluation. Each family (× seeds) is one vmapped sweep.
The Dirac-GAN (Mescheder et al. 2018) is in :mod:`.dirac`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jreg import data
from jreg.analysis import metrics
from jreg.core import streams, train
from jreg.experiments import kit, plotting
from jreg.nn import models
from jreg.regularizers import activity, spectral
from jreg.util import checks

from . import dirac

_pm = functools.partial(kit.mean_std, fmt=".3g", std_fmt=".2g")

DESCRIPTION = (
    "GANs on a ring of 8 / grid of 25 Gaussians: unregularized vs R1 (γ) vs WGAN-GP (λ) vs "
    "spectral-norm D; VEEGAN modes captured / high-quality %; Dirac-GAN trajectories."
)

MIXTURES = {
    "ring": {"std": 0.02, "about": "8 Gaussians on a circle of radius 2, σ = 0.02"},
    "grid": {"std": 0.05, "about": "25 Gaussians at {-4,-2,0,2,4}², σ = 0.05"},
}
#: (family, swept hyperparameter, config key of its values): one sweep each, in this order.
FAMILIES = (
    ("r1", "gamma", "r1_gammas"),
    ("wgan_gp", "lam", "gp_lams"),
    ("sn", "max_norm", "sn_max_norms"),
)


def mixture_centers(name: str) -> np.ndarray:
    """Means of the ring (8, 2) or the grid (25, 2) mixture."""
    if name == "ring":
        t = 2 * np.pi * np.arange(8) / 8
        return (2.0 * np.stack([np.cos(t), np.sin(t)], axis=1)).astype(np.float32)
    g = np.arange(-4.0, 5.0, 2.0)
    return np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2).astype(np.float32)


def get_config(quick: bool = False) -> dict:
    """Batch 256, Adam(1e-3, β = (0.5, 0.9)), MLPs 2 × 64 ReLU, 2-D latent.

    2 × 64 rather than 2 × 128 units and 2,000 generator steps keep the full run (40 configs
    per mixture, WGAN-GP at 5 critic steps) under 3 minutes on 2 CPU cores; the literature
    trains these toys for 10⁴–10⁵ steps, so the grid is far from converged here.
    """
    full = {
        "seed": 0, "seeds": 5, "mixtures": ("ring", "grid"), "hidden": 64, "latent": 2,
        "batch_size": 256, "lr": 1e-3, "num_steps": 2000, "eval_every": 250,
        "eval_samples": 2500, "r1_gammas": (0.0, 0.1, 1.0, 10.0), "gp_lams": (1.0, 10.0),
        "sn_max_norms": (1.0, 2.0), "n_critic_gp": 5, "dirac_steps": 400, "dirac_lr": 0.1,
        "dirac_gamma": 1.0, "dirac_lam": 1.0,
    }  # fmt: skip
    return kit.sized(quick, full, quick_overrides={"seeds": 2, "num_steps": 200, "eval_every": 100})


def make_task(config: dict, family: str, mixture: str) -> tuple[train.Task, streams.Stream]:
    """The GAN ``family`` ("r1", "wgan_gp" or "sn") on ``mixture`` and its batch stream.

    State ``{"g", "d", "opt_g", "opt_d"}``. A step is ``n_critic`` discriminator updates (1,
    or ``n_critic_gp`` for WGAN-GP), each on a fresh real and latent batch of the stream,
    then one generator update. ``evaluate`` maps the fixed latents ``data["z"]``.
    """
    h, lat, std = config["hidden"], config["latent"], MIXTURES[mixture]["std"]
    centers, wgan = mixture_centers(mixture), family == "wgan_gp"
    n_critic = config["n_critic_gp"] if wgan else 1
    adam = optax.adam(config["lr"], b1=0.5, b2=0.9)

    def opt_d(hp):  # the projection must come last: it edits what Adam produced
        if family == "sn":
            return optax.chain(adam, spectral.spectral_norm_constraint(hp["max_norm"]))
        return adam

    gen = lambda g, z: models.mlp_apply(g, z, activation="relu")
    disc = lambda d, x: models.mlp_apply(d, x, activation="relu")[..., 0]

    def init(key, hp):
        kg, kd = jax.random.split(key)
        g, d = models.mlp_init(kg, (lat, h, h, 2)), models.mlp_init(kd, (2, h, h, 1))
        return {"g": g, "d": d, "opt_g": adam.init(g), "opt_d": opt_d(hp).init(d)}

    def d_loss(d, g, real, z, key, hp):
        fake, critic = jax.lax.stop_gradient(gen(g, z)), lambda x: disc(d, x)
        if wgan:
            gp = activity.gradient_penalty(critic, real, fake, key=key)
            return jnp.mean(critic(fake)) - jnp.mean(critic(real)) + hp["lam"] * gp
        loss = jnp.mean(jax.nn.softplus(-critic(real)) + jax.nn.softplus(critic(fake)))
        if family == "r1":
            loss = loss + 0.5 * hp["gamma"] * activity.r1_penalty(critic, real)
        return loss

    def g_loss(g, d, z):
        logit = disc(d, gen(g, z))
        return -jnp.mean(logit) if wgan else jnp.mean(jax.nn.softplus(-logit))

    def step(state, batch, key, hp):
        def critic_step(carry, inp):
            (d, od), (real, z, k) = carry, inp
            loss, grads = jax.value_and_grad(d_loss)(d, state["g"], real, z, k, hp)
            upd, od = opt_d(hp).update(grads, od, d)
            return (optax.apply_updates(d, upd), od), loss

        inputs = (batch["real"], batch["z"][:-1], jax.random.split(key, n_critic))
        (d, od), losses = jax.lax.scan(critic_step, (state["d"], state["opt_d"]), inputs)
        gl, grads = jax.value_and_grad(g_loss)(state["g"], d, batch["z"][-1])
        upd, og = adam.update(grads, state["opt_g"], state["g"])
        new = {"g": optax.apply_updates(state["g"], upd), "d": d, "opt_g": og, "opt_d": od}
        return new, {"d_loss": losses[-1], "g_loss": gl}

    def evaluate(state, data_, hp):
        out = metrics.mode_coverage(gen(state["g"], data_["z"]), data_["centers"], std)
        return {k: out[k] for k in ("modes", "high_quality", "kl")}

    def batches(key, step):
        (kr, kz), b = jax.random.split(key), config["batch_size"]
        real = data.gaussian_mixture(kr, n_critic * b, centers, std).reshape(n_critic, b, 2)
        return {"real": real, "z": jax.random.normal(kz, (n_critic + 1, b, lat))}

    hparams = {"r1": {"gamma": 0.0}, "wgan_gp": {"lam": 10.0}, "sn": {"max_norm": 1.0}}[family]
    bounds = {k: train.NONNEGATIVE for k in hparams}
    task = train.Task(init, step, evaluate, hparams, name=f"gan_{family}", bounds=bounds)
    return task, streams.generated(batches, name=f"{mixture}_{family}")


def _arm_label(family: str, value: float) -> str:
    if family == "r1":
        return "unregularized" if value == 0 else f"R1 γ={value:g}"
    return f"WGAN-GP λ={value:g}" if family == "wgan_gp" else f"SN σ≤{value:g}"


def run_mixture(config: dict, name: str, run: kit.Run) -> dict:
    """Every family on one mixture: per arm (A,) labels, (A, S) metrics, samples of seed 0."""
    centers, shape = mixture_centers(name), (config["eval_samples"], config["latent"])
    z = jax.random.normal(checks.seed_key(config["seed"] + 1, "seed + 1"), shape)
    labels, out = [], {k: [] for k in ("modes", "high_quality", "kl", "samples", "modes_curve")}
    for family, hp_name, key in FAMILIES:
        values = np.asarray(config[key], np.float32)
        task, stream = make_task(config, family, name)
        res = run.sweep(
            task, {"z": z, "centers": jnp.asarray(centers)}, stream=stream,
            seeds=config["seeds"], num_steps=config["num_steps"],
            eval_every=config["eval_every"], hparams={hp_name: values},
        )  # fmt: skip
        hist, g0 = res.history, jax.tree.map(lambda a: a[:, 0], res.state["g"])  # seed 0
        labels += [_arm_label(family, float(v)) for v in values]
        for k in ("modes", "high_quality", "kl"):
            out[k].append(hist[k][:, :, -1])
        out["modes_curve"].append(hist["modes"])
        apply = lambda g: models.mlp_apply(g, z[:1000], activation="relu")
        out["samples"].append(np.asarray(jax.vmap(apply)(g0)))
    out = {k: np.concatenate(v) for k, v in out.items()}
    return {"arms": labels, "centers": centers, "step": hist["step"][0, 0], **out}


def compute(config: dict, run: kit.Run = kit.QUIET) -> dict:
    """Every arm × seed on each mixture (3 sweeps per mixture) and the Dirac-GAN (1 sweep).

    Per mixture: ``arms`` (A,), ``modes`` / ``high_quality`` / ``kl`` (A, S) at the last
    evaluation, ``modes_curve`` (A, S, T), ``samples`` (A, 1000, 2) of seed 0.
    """
    mix = {name: run_mixture(config, name, run) for name in config["mixtures"]}
    d = dirac.trajectories(config, run)
    headline, notes = {}, []
    for name, r in mix.items():
        for arm, m, hq in zip(r["arms"], r["modes"], r["high_quality"], strict=True):
            headline[f"{name}: {arm}: modes / high-quality %"] = f"{_pm(m)} / {_pm(100 * hq)}"
        modes_mean, hq_mean = r["modes"].mean(axis=1), r["high_quality"].mean(axis=1)
        base, best = modes_mean[0], int(np.argmax(modes_mean))  # arm 0: unregularized
        better = [r["arms"][a] for a in range(1, len(modes_mean)) if modes_mean[a] > base]
        notes.append(
            f"{name} ({len(r['centers'])} modes): the unregularized GAN captures {base:.1f} "
            f"modes on average with {100 * hq_mean[0]:.1f}% high-quality samples; the most "
            f"modes: {r['arms'][best]} ({modes_mean[best]:.1f}, {100 * hq_mean[best]:.1f}% "
            f"high quality); {len(better)} of {len(modes_mean) - 1} regularized arms capture "
            f"more modes than the unregularized one ({', '.join(better) or 'none'}) and "
            f"{int(np.sum(hq_mean[1:] > hq_mean[0]))} a larger high-quality fraction "
            f"(means over {r['modes'].shape[1]} seeds; compare the spreads in the table)."
        )
    more_headline, more_notes = dirac.summary(d, config)
    headline, notes = {**headline, **more_headline}, notes + more_notes
    return {"mixtures": mix, "dirac": d, "headline": headline, "notes": notes}


def figure(numbers: dict, config: dict):
    """Rows per mixture: sample scatter per arm; last row: modes, high-quality %, Dirac-GAN."""
    mix = numbers["mixtures"]
    n_arms = max(len(r["arms"]) for r in mix.values())
    fig, axes = plotting.figure(len(mix) + 1, n_arms, size=(2.2, 2.2))
    bottom = axes[-1]
    for row, (name, r) in enumerate(mix.items()):
        centers, samples = np.asarray(r["centers"]), np.asarray(r["samples"])
        lim = np.abs(centers).max() + 1.0
        for a, (ax, arm) in enumerate(zip(axes[row], r["arms"], strict=False)):
            ax.scatter(samples[a][:, 0], samples[a][:, 1], s=1, alpha=0.4, color="C0")
            ax.scatter(centers[:, 0], centers[:, 1], s=25, marker="x", color="C3", lw=1)
            ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xticks=[], yticks=[])
            ax.set_title(
                f"{name}: {arm}\n{np.mean(r['modes'][a]):.1f}/{len(centers)} modes, "
                f"{100 * np.mean(r['high_quality'][a]):.0f}% HQ",
                fontsize=7,
            )
        for ax in axes[row, len(r["arms"]) :]:
            ax.axis("off")
        x = np.arange(len(r["arms"])) + (row - 0.5 * (len(mix) - 1)) * 0.35
        for ax, key, scale in ((bottom[0], "modes", 1), (bottom[1], "high_quality", 100)):
            v = scale * np.asarray(r[key], np.float64)
            ax.errorbar(x, v.mean(1), yerr=v.std(1), fmt="o", ms=3, capsize=2, label=name)
        bottom[0].axhline(len(centers), color=f"C{row}", ls=":", lw=0.8)
    arms = next(iter(mix.values()))["arms"]
    for ax, lab in ((bottom[0], "modes captured"), (bottom[1], "high-quality samples (%)")):
        ax.set_xticks(np.arange(len(arms)), arms, rotation=60, ha="right", fontsize=6)
        ax.set_ylabel(lab)
        ax.legend(fontsize=6)
    dirac.draw(bottom[2], bottom[3], numbers["dirac"])
    for ax in bottom[4:]:
        ax.axis("off")
    fig.suptitle(
        f"GANs on 2-D mixtures, MLP 2×{config['hidden']} ReLU, batch {config['batch_size']}, "
        f"{config['num_steps']} generator steps; mean ± std over {config['seeds']} seeds "
        "(scatter: seed 0, × = true modes)",
        fontsize=9,
    )
    fig.tight_layout()
    return fig
