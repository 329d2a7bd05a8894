"""The pieces of :mod:`.map_priors`: data, the negative log posterior, MAP training, closed forms.

Linear model ``y = Xw + ε``, ``ε ~ N(0, σ² I)``; a Gaussian prior ``N(0, τ²)`` or a Laplace
prior of scale ``b`` on each weight. :func:`map_task` finds the MAP by training (gradient
descent or ISTA), :func:`closed_forms` gives ridge, the posterior mean and the lasso.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jreg.analysis import linear
from jreg.core import train
from jreg.regularizers import penalties
from jreg.util import linalg

PRIORS = ("gaussian", "laplace")


def make_data(key: jax.Array, n: int, d: int, *, noise_std: float, true_scale: float):
    """Gaussian design ``x`` (n, d), sparse-ish ``w_true`` ~ Laplace, ``y = x w + σ ε`` (n,)."""
    k_x, k_w, k_e = jax.random.split(key, 3)
    x = jax.random.normal(k_x, (n, d))
    w = true_scale * jax.random.laplace(k_w, (d,))
    return x, x @ w + noise_std * jax.random.normal(k_e, (n,)), w


def neg_log_posterior(prior: str, w, x, y, scale, noise_var):
    """``U(w) = ‖y − xw‖²/(2σ²) + ‖w‖²/(2τ²)`` (Gaussian, ``scale = τ``) or ``+ ‖w‖₁/b``
    (Laplace, ``scale = b``), the negative log posterior up to a constant; scalar.
    ``w`` (d,), ``x`` (n, d), ``y`` (n,), ``noise_var`` σ²."""
    fit = 0.5 * jnp.sum((y - x @ w) ** 2) / noise_var
    if prior == "gaussian":
        return fit + 0.5 * penalties.l2(w) / scale**2
    return fit + penalties.l1(w) / scale


def map_task(prior: str, num_features: int, noise_var: float) -> train.Task:
    """MAP estimation of a linear model's weights under a Gaussian or Laplace prior.

    Data (for :func:`jreg.core.streams.full_batch`): ``{"train": {"x": (S, n, d), "y": (S,
    n), "lipschitz": (S,)}}``, S data sets; ``lipschitz`` is ``λ_max(xᵀx)/σ²``, the
    smoothness of the likelihood term. Hyperparameters ``dataset`` (index into the stack)
    and ``scale`` (τ or b). ``"gaussian"``: gradient descent on U with step ``1/(L + 1/τ²)``;
    ``"laplace"``: proximal gradient (ISTA; Beck & Teboulle 2009), a step of ``1/L`` on the
    likelihood, then soft-thresholding by ``1/(L·b)`` — exact zeros. State ``{"w": (d,)}``
    (zeros at the start); step metric ``train_objective`` (U after the step), evaluation
    ``neg_log_posterior`` (U of the state); U as in :func:`neg_log_posterior`.
    """
    if prior not in PRIORS:
        raise ValueError(f"Unknown prior {prior!r}; available: {', '.join(PRIORS)}.")

    def pick(batch, hp):  # (x, y, L, scale) of the data set hp["dataset"]
        i = jnp.asarray(hp["dataset"], jnp.int32)
        x = batch["x"][i]
        return x, batch["y"][i], batch["lipschitz"][i], jnp.asarray(hp["scale"], x.dtype)

    def init(key, hp):
        del key, hp
        return {"w": jnp.zeros(num_features, jnp.result_type(float))}  # float64 under x64

    def step(state, batch, key, hp):
        del key
        x, y, lip, scale = pick(batch, hp)
        w = state["w"]
        grad_fit = -(x.T @ (y - x @ w)) / noise_var
        if prior == "gaussian":
            w = w - (grad_fit + w / scale**2) / (lip + 1 / scale**2)
        else:
            w = linear.soft_threshold(w - grad_fit / lip, 1 / (lip * scale))
        return {"w": w}, {"train_objective": neg_log_posterior(prior, w, x, y, scale, noise_var)}

    def evaluate(state, data, hp):
        x, y, _, scale = pick(data["train"], hp)
        return {"neg_log_posterior": neg_log_posterior(prior, state["w"], x, y, scale, noise_var)}

    return train.Task(init, step, evaluate, {"dataset": 0, "scale": 1.0}, name=f"map_{prior}")


def closed_forms(x, y, lam, alpha, tau, noise_var):
    """Closed forms for one data set: ridge (λ), conditional mean (τ), lasso (α), each (K, d)."""

    def posterior_mean(t):  # E[w | y] = τ²xᵀ(τ²xxᵀ + σ²I)⁻¹y
        cov_y = t**2 * x @ x.T + noise_var * jnp.eye(x.shape[0], dtype=x.dtype)
        return t**2 * x.T @ linalg.solve(cov_y, y)

    # Both solves go through jreg.util.linalg.solve: two batched LAPACK solves in one
    # program can deadlock XLA:CPU's pool (seen in a full run of this experiment).
    ridge = jax.vmap(lambda a: linear.ridge(x, y, a, fit_intercept=False).coef)(lam)
    lasso = jax.vmap(lambda a: linear.lasso(x, y, a, fit_intercept=False))(alpha)
    return ridge, jax.vmap(posterior_mean)(tau), lasso.coef, lasso.kkt
