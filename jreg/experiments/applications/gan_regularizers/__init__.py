"""GAN regularizers on 2-D Gaussian mixtures (mode coverage) and on the Dirac-GAN.

Mixtures (VEEGAN, Srivastava et al. 2017, Sec. 5.1): a ring of 8 Gaussians of radius 2
with σ = 0.02, and a 5 × 5 grid of 25 Gaussians at {-4, -2, 0, 2, 4}² with σ = 0.05.
Generator and discriminator are ReLU MLPs (VEEGAN-sized: 2 hidden layers of 128, 2-D
latent), Adam. Arms, each over seeds in one vmapped sweep per family:
* unregularized non-saturating GAN (R1 with γ = 0);
* R1 on real data, ``(γ/2) E‖∇D(x)‖²`` (:func:`jreg.regularizers.activity.r1_penalty`;
  Mescheder et al. 2018);
* WGAN-GP on the Wasserstein loss, λ = 10 (published) and 1, 5 critic steps per generator
  step (:func:`jreg.regularizers.activity.gradient_penalty`; Gulrajani et al. 2017);
* spectral-norm D, σ_max ≤ 1 (published) and ≤ 8 per weight matrix, projected after Adam
  (:func:`jreg.regularizers.spectral.spectral_norm_constraint`; Miyato et al. 2018).
Metrics (:func:`jreg.analysis.metrics.mode_coverage`, VEEGAN's definitions) on 2,500 samples
from a fixed latent batch, beside chance baselines scored the same way and the published
tables (:mod:`.compare`). The Dirac-GAN (Mescheder et al. 2018) is in :mod:`.dirac`.
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
from jreg.experiments import kit
from jreg.nn import models
from jreg.regularizers import activity, spectral
from jreg.util import checks

from . import compare, dirac, plots

_pm = functools.partial(kit.mean_std, fmt=".3g", std_fmt=".2g")

DESCRIPTION = (
    "GANs on a ring of 8 / grid of 25 Gaussians: unregularized vs R1 vs WGAN-GP vs "
    "spectral-norm D, against chance clouds and VEEGAN / PacGAN Table 1; Dirac-GAN paths."
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
    """Batch 128, Adam(1e-3 cosine-decayed to 1e-5, β = (0.5, 0.9)), MLPs 2 × 128 ReLU.

    The networks work in coordinates divided by max |center| (as Gulrajani et al.'s toy code
    divides the grid by 2.828) and start with PyTorch's default biases U(±1/√fan_in) on He
    weights: with zero biases a ReLU generator is positively homogeneous in z and, in a
    measured 8,000-step run (batch 256), only drew rays through the origin (8 % high
    quality on the grid). ``tol_modes``:
    Measured on the grid (1 seed, 3,000 steps; modes / high-quality %): WGAN-GP λ = 10 sat
    at chance for lr 1e-3 (9 / 1.2), 3e-4 (5 / 2.9) and 1e-4 (1,500 steps: 3 / 1.4), and
    with the penalty's unit slope in the rescaled coordinates as in Gulrajani et al.'s toy
    code (2 / 0.2, diverging); λ = 1 reached 23 / 16.5 (unregularized 24 / 18.2). Spectral
    norm σ ≤ 1 per layer bounds D's slope in the data's coordinates by 1 / 4 (measured 0.02,
    a D that varies by 0.13 logits over the whole square): 8 / 1.0 at σ ≤ 2, 15 / 6.8 at
    4, 23 / 16.0 at 8. Adam lr 2e-4, β2 = 0.999 (SNGAN) was slower in 1,500 steps (σ ≤ 4:
    13 / 4.8 vs 19 / 8.3), so every family keeps lr 1e-3, β = (0.5, 0.9).
    ``tol_modes``: our mode count agrees with a published one within it; ``chance_factor``:
    an arm is far above chance at that multiple of the chance floor's high-quality %.
    """
    full = {
        "seed": 0, "seeds": 3, "mixtures": ("ring", "grid"), "families": ("r1", "wgan_gp", "sn"),
        "hidden": 128, "depth": 2,
        "latent": 2, "batch_size": 128, "optim": compare.OPTIM, "lr_end": 0.01, "num_steps": 3000,
        "eval_every": 250, "eval_samples": 2500, "r1_gammas": (0.0, 1.0), "gp_lams": (1.0, 10.0),
        "sn_max_norms": (1.0, 8.0), "tol_modes": {"ring": 1.0, "grid": 2.0},
        "chance_factor": 5.0, "published": compare.PUBLISHED, "dirac_steps": 400,
        "dirac_lr": 0.1, "dirac_gamma": 1.0, "dirac_lam": 1.0,
    }  # fmt: skip
    small = {"seeds": 2, "num_steps": 200, "eval_every": 100, "hidden": 32}
    return kit.sized(quick, full, quick_overrides=small)


def generate(g, z: jax.Array, mixture: str) -> jax.Array:
    """Generator ``g``'s samples at latents ``z``, in the mixture's coordinates."""
    return float(np.abs(mixture_centers(mixture)).max()) * models.mlp_apply(g, z, activation="relu")


def _init(key: jax.Array, widths: tuple) -> list:
    """He weights, biases U(±1/√fan_in) (PyTorch's ``nn.Linear`` default)."""
    kw, kb = jax.random.split(key)
    params = models.mlp_init(kw, widths, init="he")
    keys = jax.random.split(kb, len(params))
    bias = lambda p, k: jax.random.uniform(k, p["b"].shape, minval=-1.0) / p["w"].shape[0] ** 0.5
    return [{"w": p["w"], "b": bias(p, k)} for p, k in zip(params, keys, strict=True)]


def make_task(config: dict, family: str, mixture: str) -> tuple[train.Task, streams.Stream]:
    """The GAN ``family`` ("r1", "wgan_gp" or "sn") on ``mixture`` and its batch stream.

    State ``{"g", "d", "opt_g", "opt_d"}``. A step is ``n_critic`` discriminator updates (1,
    or ``n_critic_gp`` for WGAN-GP), each on a fresh real and latent batch of the stream,
    then one generator update. ``evaluate`` maps the fixed latents ``data["z"]``.
    """
    h, lat, std = config["hidden"], config["latent"], MIXTURES[mixture]["std"]
    centers, wgan, o = mixture_centers(mixture), family == "wgan_gp", config["optim"][family]
    n_critic, scale = o["n_critic"], float(np.abs(centers).max())

    def adam(steps):
        lr = optax.cosine_decay_schedule(o["lr"], steps, config["lr_end"])
        return optax.adam(lr, b1=o["b1"], b2=o["b2"])

    opt_g, adam_d = adam(config["num_steps"]), adam(config["num_steps"] * n_critic)

    def opt_d(hp):  # the projection must come last: it edits what Adam produced
        if family == "sn":
            return optax.chain(adam_d, spectral.spectral_norm_constraint(hp["max_norm"]))
        return adam_d

    gen = functools.partial(generate, mixture=mixture)
    disc = lambda d, x: models.mlp_apply(d, x / scale, activation="relu")[..., 0]

    def init(key, hp):
        kg, kd = jax.random.split(key)
        hid = (h,) * config["depth"]
        g, d = _init(kg, (lat, *hid, 2)), _init(kd, (2, *hid, 1))
        return {"g": g, "d": d, "opt_g": opt_g.init(g), "opt_d": opt_d(hp).init(d)}

    def d_loss(d, g, real, z, key, hp):
        fake, critic = jax.lax.stop_gradient(gen(g, z)), lambda x: disc(d, x)
        if wgan:  # unit slope in the data's coordinates
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
        upd, og = opt_g.update(grads, state["opt_g"], state["g"])
        new = {"g": optax.apply_updates(state["g"], upd), "d": d, "opt_g": og, "opt_d": od}
        return new, {"d_loss": losses[-1], "g_loss": gl}

    def evaluate(state, data_, hp):
        out = metrics.mode_coverage(gen(state["g"], data_["z"]), data_["centers"], std)
        return {k: out[k] for k in ("modes", "high_quality", "kl", "counts")}

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
    """Every family on one mixture: per arm (A,) labels, (A, S) metrics, samples of seed 0.

    ``dropped`` (A, S): modes captured at one evaluation and lost at the next, per
    evaluation over the second half of training (mode hopping; 0 for a settled generator).
    """
    centers, shape = mixture_centers(name), (config["eval_samples"], config["latent"])
    z = jax.random.normal(checks.seed_key(config["seed"] + 1, "seed + 1"), shape)
    labels, out = [], {k: [] for k in ("modes", "high_quality", "kl", "samples", "dropped")}
    for family, hp_name, key in (f for f in FAMILIES if f[0] in config["families"]):
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
        t = hist["counts"].shape[2]
        held = hist["counts"][:, :, min(t // 2, t - 2) :] > 0  # (A, S, T', M)
        out["dropped"].append(np.sum(held[:, :, :-1] & ~held[:, :, 1:], -1).mean(-1))
        out["samples"].append(np.asarray(jax.vmap(lambda g: generate(g, z[:1000], name))(g0)))
    out = {k: np.concatenate(v) for k, v in out.items()}
    std = MIXTURES[name]["std"]
    return {"arms": labels, "centers": centers, "chance": compare.chance(config, centers, std),
            **out}  # fmt: skip


def compute(config: dict, run: kit.Run = kit.QUIET) -> dict:
    """Every arm × seed on each mixture (3 sweeps per mixture) and the Dirac-GAN (1 sweep).

    Per mixture: ``arms`` (A,), ``modes`` / ``high_quality`` / ``kl`` / ``dropped`` (A, S)
    at the last evaluation, ``samples`` (A, 1000, 2) of seed 0, ``chance`` (the uniform
    cloud and the one-blob baseline, :func:`.compare.chance`); ``verdicts`` per mixture.
    """
    mix = {name: run_mixture(config, name, run) for name in config["mixtures"]}
    d = dirac.trajectories(config, run)
    headline, notes, verdicts = {}, [], {}
    for name, r in mix.items():
        c = r["chance"]
        for arm, m, hq in zip(c["arms"], c["modes"], c["high_quality"], strict=True):
            headline[f"{name}: chance, {arm}: modes / HQ %"] = f"{_pm(m)} / {_pm(100 * hq)}"
        for arm, m, hq in zip(r["arms"], r["modes"], r["high_quality"], strict=True):
            headline[f"{name}: {arm}: modes / HQ %"] = f"{_pm(m)} / {_pm(100 * hq)}"
        verdicts[name], more = compare.against_published(name, r, config)
        drop = r["dropped"].mean(1)
        notes += more + [
            f"{name}: modes lost between consecutive evaluations (second half, mean over "
            f"seeds): {', '.join(f'{a} {v:.2f}' for a, v in zip(r['arms'], drop, strict=True))}."
        ]
    more_headline, more_notes = dirac.summary(d, config)
    return {"mixtures": mix, "dirac": d, "verdicts": verdicts, "published": compare.PUBLISHED,
            "headline": {**headline, **more_headline}, "notes": notes + more_notes}  # fmt: skip


figure = plots.figure
