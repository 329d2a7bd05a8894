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
  iteration;
  the hard-constraint form of spectral normalization, Miyato et al. 2018), c swept.

Metrics (:func:`jreg.analysis.metrics.mode_coverage`, VEEGAN's definitions) on 2,500 samples from a
fixed latent batch at every evaluation. Each family (× seeds) is one vmapped sweep.

Dirac-GAN (Mescheder et al. 2018): data δ₀, generator θ, discriminator D(x) = ψx,
L(θ, ψ) = f(ψθ) + f(0) with f(t) = −log(1 + e^{−t}) (WGAN: f(t) = t); alternating
gradient steps from (θ, ψ) = (1, 1).
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
from jreg.experiments.kit import mean_std
from jreg.nn import models
from jreg.regularizers import activity, spectral
from jreg.util import checks

_pm = functools.partial(mean_std, fmt=".3g", std_fmt=".2g")

DESCRIPTION = (
    "GANs on a ring of 8 / grid of 25 Gaussians: unregularized vs R1 (γ) vs WGAN-GP (λ) vs "
    "spectral-norm D; VEEGAN modes captured / high-quality %; Dirac-GAN trajectories."
)

MIXTURES = {
    "ring": {"std": 0.02, "about": "8 Gaussians on a circle of radius 2, σ = 0.02"},
    "grid": {"std": 0.05, "about": "25 Gaussians at {-4,-2,0,2,4}², σ = 0.05"},
}


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
    return {
        "seed": 0,
        "seeds": 2 if quick else 5,
        "mixtures": ("ring", "grid"),
        "hidden": 64,
        "latent": 2,
        "batch_size": 256,
        "lr": 1e-3,
        "num_steps": 200 if quick else 2000,
        "eval_every": 100 if quick else 250,
        "eval_samples": 2500,
        "r1_gammas": (0.0, 0.1, 1.0, 10.0),
        "gp_lams": (1.0, 10.0),
        "sn_max_norms": (1.0, 2.0),
        "n_critic_gp": 5,
        "dirac_steps": 400,
        "dirac_lr": 0.1,
        "dirac_gamma": 1.0,
        "dirac_lam": 1.0,
    }


# ----------------------------------------------------------------------------- mixtures


def make_task(config: dict, family: str, mixture: str) -> tuple[train.Task, streams.Stream]:
    """The GAN ``family`` ("r1", "wgan_gp" or "sn") on ``mixture`` and its batch stream.

    State ``{"g", "d", "opt_g", "opt_d"}`` (two MLPs, two optax states). The stream draws
    ``{"real": (n_critic, B, 2), "z": (n_critic + 1, B, latent)}`` at every step.

    A step is ``n_critic`` discriminator updates (1, or ``n_critic_gp`` for WGAN-GP), each
    on a fresh real and latent batch, then one generator update. ``evaluate`` reads the
    fixed latents ``data["z"]`` (2500, latent) and returns the mode-coverage metrics.
    """
    h, lat, std = config["hidden"], config["latent"], MIXTURES[mixture]["std"]
    centers = mixture_centers(mixture)
    wgan = family == "wgan_gp"
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
        g = models.mlp_init(kg, (lat, h, h, 2))
        d = models.mlp_init(kd, (2, h, h, 1))
        return {"g": g, "d": d, "opt_g": adam.init(g), "opt_d": opt_d(hp).init(d)}

    def d_loss(d, g, real, z, key, hp):
        fake = jax.lax.stop_gradient(gen(g, z))
        critic = lambda x: disc(d, x)
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
        tx = opt_d(hp)

        def critic_step(carry, inp):
            d, od = carry
            real, z, k = inp
            loss, grads = jax.value_and_grad(d_loss)(d, state["g"], real, z, k, hp)
            upd, od = tx.update(grads, od, d)
            return (optax.apply_updates(d, upd), od), loss

        keys = jax.random.split(key, n_critic)
        (d, od), losses = jax.lax.scan(
            critic_step, (state["d"], state["opt_d"]), (batch["real"], batch["z"][:-1], keys)
        )
        gl, grads = jax.value_and_grad(g_loss)(state["g"], d, batch["z"][-1])
        upd, og = adam.update(grads, state["opt_g"], state["g"])
        g = optax.apply_updates(state["g"], upd)
        new = {"g": g, "d": d, "opt_g": og, "opt_d": od}
        return new, {"d_loss": losses[-1], "g_loss": gl}

    def evaluate(state, data_, hp):
        out = metrics.mode_coverage(gen(state["g"], data_["z"]), data_["centers"], std)
        return {k: out[k] for k in ("modes", "high_quality", "kl")}

    def batches(key, step):
        kr, kz = jax.random.split(key)
        b = config["batch_size"]
        real = data.gaussian_mixture(kr, n_critic * b, centers, std).reshape(n_critic, b, 2)
        return {"real": real, "z": jax.random.normal(kz, (n_critic + 1, b, lat))}

    hparams = {"r1": {"gamma": 0.0}, "wgan_gp": {"lam": 10.0}, "sn": {"max_norm": 1.0}}[family]
    bounds = {k: train.NONNEGATIVE for k in hparams}
    task = train.Task(init, step, evaluate, hparams, name=f"gan_{family}", bounds=bounds)
    return task, streams.generated(batches, name=f"{mixture}_{family}")


FAMILIES = (
    ("r1", "gamma", "r1_gammas"),
    ("wgan_gp", "lam", "gp_lams"),
    ("sn", "max_norm", "sn_max_norms"),
)


def _arm_label(family: str, value: float) -> str:
    if family == "r1":
        return "unregularized" if value == 0 else f"R1 γ={value:g}"
    return f"WGAN-GP λ={value:g}" if family == "wgan_gp" else f"SN σ≤{value:g}"


def run_mixture(config: dict, name: str, *, progress: bool) -> dict:
    """Every family on one mixture: per arm (A,) labels, (A, S) metrics, samples of seed 0."""
    centers = mixture_centers(name)
    z = jax.random.normal(
        checks.seed_key(config["seed"] + 1, "seed + 1"), (config["eval_samples"], config["latent"])
    )
    ds = {"z": z, "centers": jnp.asarray(centers)}
    labels, out = [], {"modes": [], "high_quality": [], "kl": [], "samples": [], "modes_curve": []}
    for family, hp_name, key in FAMILIES:
        values = np.asarray(config[key], np.float32)
        task, stream = make_task(config, family, name)
        res = train.sweep(
            task,
            ds,
            stream=stream,
            seeds=config["seeds"],
            num_steps=config["num_steps"],
            eval_every=config["eval_every"],
            hparams={hp_name: values},
            progress=progress,
        )
        hist = jax.tree.map(np.asarray, res.history)
        labels += [_arm_label(family, float(v)) for v in values]
        for k in ("modes", "high_quality", "kl"):
            out[k].append(hist[k][:, :, -1])
        out["modes_curve"].append(hist["modes"])
        g0 = jax.tree.map(lambda a: a[:, 0], res.state["g"])  # seed 0 of every arm
        out["samples"].append(
            np.asarray(jax.vmap(lambda g: models.mlp_apply(g, z[:1000], activation="relu"))(g0))
        )
        step = hist["step"][0, 0]
    out = {k: np.concatenate(v) for k, v in out.items()}
    return {"arms": labels, "centers": centers, "step": step, **out}


# ----------------------------------------------------------------------------- Dirac-GAN


def dirac_task(config: dict) -> train.Task:
    """Dirac-GAN with swept ``gamma`` (R1, γ/2 ψ²), ``lam`` (GP (|ψ| − 1)²), ``wgan`` (0/1).

    ``wgan = 1`` uses f(t) = t (the WGAN objective), 0 the non-saturating f(t) = −log(1+e^{−t}).
    Alternating plain gradient steps (discriminator first), learning rate ``dirac_lr``.
    """
    lr = config["dirac_lr"]

    def init(key, hp):
        return {"theta": jnp.asarray(1.0), "psi": jnp.asarray(1.0)}

    def f(t, hp):
        return hp["wgan"] * t + (1 - hp["wgan"]) * (-jax.nn.softplus(-t))

    def step(state, batch, key, hp):
        theta, psi = state["theta"], state["psi"]
        zero = jnp.zeros((1, 1))

        def d_loss(psi):
            critic = lambda x: psi * x[..., 0]
            reg = 0.5 * hp["gamma"] * activity.r1_penalty(critic, zero)
            gp = activity.gradient_penalty(critic, zero, theta * jnp.ones((1, 1)), key=key)
            return -(f(psi * theta, hp) + f(0.0, hp)) + reg + hp["lam"] * gp

        psi = psi - lr * jax.grad(d_loss)(psi)
        theta = theta - lr * jax.grad(lambda th: f(psi * th, hp))(theta)
        return {"theta": theta, "psi": psi}, {"distance": jnp.hypot(theta, psi)}

    evaluate = lambda state, data_, hp: dict(state)
    hparams = {"gamma": 0.0, "lam": 0.0, "wgan": 0.0}
    bounds = {k: train.NONNEGATIVE for k in ("gamma", "lam")}
    return train.Task(init, step, evaluate, hparams, name="dirac_gan", bounds=bounds)


def run_dirac(config: dict) -> dict:
    """(θ, ψ) after every step for unregularized, WGAN-GP and R1: one sweep of 3 arms."""
    arms = (
        "unregularized",
        f"WGAN-GP λ={config['dirac_lam']:g}",
        f"R1 γ={config['dirac_gamma']:g}",
    )
    hp = {
        "gamma": np.asarray([0.0, 0.0, config["dirac_gamma"]], np.float32),
        "lam": np.asarray([0.0, config["dirac_lam"], 0.0], np.float32),
        "wgan": np.asarray([0.0, 1.0, 0.0], np.float32),
    }
    res = train.sweep(
        dirac_task(config),
        {},
        stream=streams.generated(lambda key, step: {}),
        seeds=1,
        num_steps=config["dirac_steps"],
        eval_every=1,
        hparams=hp,
        progress=False,
    )
    h = jax.tree.map(lambda a: np.asarray(a)[:, 0], res.history)
    theta = np.concatenate([np.ones((3, 1)), h["theta"]], axis=1)
    psi = np.concatenate([np.ones((3, 1)), h["psi"]], axis=1)
    return {"arms": arms, "theta": theta, "psi": psi, "distance": np.hypot(theta, psi)}


# ----------------------------------------------------------------------------- experiment


def compute(config: dict, run: kit.Run = kit.QUIET) -> dict:
    """Every arm × seed on each mixture (3 sweeps per mixture) and the Dirac-GAN (1 sweep).

    Returns per mixture: ``arms`` (A,), ``modes`` / ``high_quality`` / ``kl`` (A, S) at the
    last evaluation, ``modes_curve`` (A, S, T), ``samples`` (A, 1000, 2) of seed 0; and for
    the Dirac-GAN ``theta`` / ``psi`` / ``distance`` (3, steps + 1).
    """
    progress = run.progress
    mix = {name: run_mixture(config, name, progress=progress) for name in config["mixtures"]}
    dirac = run_dirac(config)
    headline, notes = {}, []
    for name, r in mix.items():
        m = len(r["centers"])
        modes_mean = r["modes"].mean(axis=1)
        hq_mean = r["high_quality"].mean(axis=1)
        for a, arm in enumerate(r["arms"]):
            headline[f"{name}: {arm}: modes / high-quality %"] = (
                f"{_pm(r['modes'][a])} / {_pm(100 * r['high_quality'][a])}"
            )
        base = modes_mean[0]  # arm 0 is the unregularized GAN (γ = 0)
        best = int(np.argmax(modes_mean))
        better = [r["arms"][a] for a in range(1, len(modes_mean)) if modes_mean[a] > base]
        notes.append(
            f"{name} ({m} modes): the unregularized GAN captures {base:.1f} modes on average "
            f"with {100 * hq_mean[0]:.1f}% high-quality samples; the most modes: "
            f"{r['arms'][best]} ({modes_mean[best]:.1f}, {100 * hq_mean[best]:.1f}% high "
            f"quality); {len(better)} of {len(modes_mean) - 1} regularized arms capture more "
            f"modes than the unregularized one ({', '.join(better) or 'none'}) and "
            f"{int(np.sum(hq_mean[1:] > hq_mean[0]))} a larger high-quality fraction "
            f"(means over {r['modes'].shape[1]} seeds; compare the spreads in the table)."
        )
    steps = config["dirac_steps"]
    for arm, th, ps, dist in zip(
        *(dirac[k] for k in ("arms", "theta", "psi", "distance")), strict=True
    ):
        headline[f"Dirac-GAN {arm}: ‖(θ, ψ)‖ after {steps} steps (start √2)"] = float(dist[-1])
        notes.append(
            f"Dirac-GAN, {arm}: after {steps} alternating steps (lr {config['dirac_lr']:g}) "
            f"(θ, ψ) = ({th[-1]:.3g}, {ps[-1]:.3g}); distance to the equilibrium (0, 0) "
            f"{dist[-1]:.3g} (start {dist[0]:.3g}, largest {dist.max():.3g}); "
            f"|θ| (generator to data) {'< 1e-3' if abs(th[-1]) < 1e-3 else f'= {abs(th[-1]):.3g}'}."
        )
    return {"mixtures": mix, "dirac": dirac, "headline": headline, "notes": notes}


def figure(numbers: dict, config: dict):
    """Rows per mixture: sample scatter per arm; last row: modes, high-quality %, Dirac-GAN."""
    mix = numbers["mixtures"]
    names = list(mix)
    n_arms = max(len(mix[n]["arms"]) for n in names)
    fig, axes = plotting.figure(len(names) + 1, n_arms, size=(2.2, 2.2))
    for row, name in enumerate(names):
        r = mix[name]
        centers, samples = np.asarray(r["centers"]), np.asarray(r["samples"])
        lim = np.abs(centers).max() + 1.0
        for a, arm in enumerate(r["arms"]):
            ax = axes[row, a]
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
    bottom = axes[-1]
    for i, name in enumerate(names):
        r = mix[name]
        x = np.arange(len(r["arms"])) + (i - 0.5 * (len(names) - 1)) * 0.35
        for ax, key, scale in ((bottom[0], "modes", 1), (bottom[1], "high_quality", 100)):
            v = scale * np.asarray(r[key], np.float64)
            ax.errorbar(x, v.mean(1), yerr=v.std(1), fmt="o", ms=3, capsize=2, label=name)
            if key == "modes":
                ax.axhline(len(r["centers"]), color=f"C{i}", ls=":", lw=0.8)
    arms = mix[names[0]]["arms"]
    for ax, lab in ((bottom[0], "modes captured"), (bottom[1], "high-quality samples (%)")):
        ax.set_xticks(np.arange(len(arms)), arms, rotation=60, ha="right", fontsize=6)
        ax.set_ylabel(lab)
        ax.legend(fontsize=6)
    d = numbers["dirac"]
    t = np.arange(np.asarray(d["distance"]).shape[1])
    for k, arm in enumerate(d["arms"]):
        bottom[2].plot(d["theta"][k], d["psi"][k], lw=0.8, label=arm)
        bottom[3].plot(t, d["distance"][k], lw=0.8, label=arm)
    bottom[2].plot([0], [0], "k*", ms=6)
    bottom[2].set(xlabel="generator θ", ylabel="discriminator ψ", title="Dirac-GAN paths")
    bottom[3].set(xlabel="step", ylabel="‖(θ, ψ)‖", title="distance to (0, 0)", yscale="log")
    for ax in bottom[2:4]:
        ax.legend(fontsize=6)
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
