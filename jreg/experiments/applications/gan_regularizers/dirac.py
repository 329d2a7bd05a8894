"""The Dirac-GAN of Mescheder et al. 2018: where alternating gradient steps take (θ, ψ).

Data δ₀, generator θ, discriminator D(x) = ψx, L(θ, ψ) = f(ψθ) + f(0) with the
non-saturating f(t) = −log(1 + e^{−t}) (WGAN: f(t) = t); alternating plain gradient steps
(discriminator first) from (θ, ψ) = (1, 1), unregularized, with WGAN-GP and with R1.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jreg.core import streams, train
from jreg.experiments import kit
from jreg.regularizers import activity


def task(config: dict) -> train.Task:
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


def trajectories(config: dict, run: kit.Run) -> dict:
    """(θ, ψ) after every step for unregularized, WGAN-GP and R1: one sweep of 3 arms.

    Returns ``arms`` (3,) and ``theta`` / ``psi`` / ``distance`` (3, steps + 1).
    """
    gamma, lam = config["dirac_gamma"], config["dirac_lam"]
    hp = {"gamma": [0.0, 0.0, gamma], "lam": [0.0, lam, 0.0], "wgan": [0.0, 1.0, 0.0]}
    res = run.sweep(
        task(config),
        {},
        stream=streams.generated(lambda key, step: {}),
        seeds=1,
        num_steps=config["dirac_steps"],
        eval_every=1,
        hparams={k: np.asarray(v, np.float32) for k, v in hp.items()},
    )
    start = np.ones((3, 1))
    theta, psi = (np.concatenate([start, res.history[k][:, 0]], 1) for k in ("theta", "psi"))
    arms = ("unregularized", f"WGAN-GP λ={lam:g}", f"R1 γ={gamma:g}")
    return {"arms": arms, "theta": theta, "psi": psi, "distance": np.hypot(theta, psi)}


def summary(d: dict, config: dict) -> tuple[dict, list[str]]:
    """Headline entries and notes of :func:`trajectories`'s numbers ``d``: one per arm."""
    steps, headline, notes = config["dirac_steps"], {}, []
    for arm, th, ps, dist in zip(d["arms"], d["theta"], d["psi"], d["distance"], strict=True):
        headline[f"Dirac-GAN {arm}: ‖(θ, ψ)‖ after {steps} steps (start √2)"] = float(dist[-1])
        notes.append(
            f"Dirac-GAN, {arm}: after {steps} alternating steps (lr {config['dirac_lr']:g}) "
            f"(θ, ψ) = ({th[-1]:.3g}, {ps[-1]:.3g}); distance to the equilibrium (0, 0) "
            f"{dist[-1]:.3g} (start {dist[0]:.3g}, largest {dist.max():.3g}); "
            f"|θ| (generator to data) {'< 1e-3' if abs(th[-1]) < 1e-3 else f'= {abs(th[-1]):.3g}'}."
        )
    return headline, notes


def draw(ax_path, ax_distance, d: dict) -> None:
    """The (θ, ψ) paths and their distance to the equilibrium (0, 0) per step."""
    for k, arm in enumerate(d["arms"]):
        ax_path.plot(d["theta"][k], d["psi"][k], lw=0.8, label=arm)
        ax_distance.plot(np.asarray(d["distance"][k]), lw=0.8, label=arm)
    ax_path.plot([0], [0], "k*", ms=6)
    ax_path.set(xlabel="generator θ", ylabel="discriminator ψ", title="Dirac-GAN paths")
    ax_distance.set(xlabel="step", ylabel="‖(θ, ψ)‖", title="distance to (0, 0)", yscale="log")
    for ax in (ax_path, ax_distance):
        ax.legend(fontsize=6)
