"""Synthetic data generated from a key: two moons (with label noise), a DMS escape library,
Gaussian mixtures."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jreg.util.checks import (
    check_closed_unit_interval,
    check_finite,
    check_key,
    check_labels,
    check_nonneg_int,
    check_nonnegative,
    check_positive_int,
)


def as_outputs(x_tr, y_tr, x_te, y_te) -> tuple[np.ndarray, ...]:
    """``(x_train, y_train, x_test, y_test)`` as contiguous float32 / int32 NumPy arrays."""
    return (
        np.ascontiguousarray(x_tr, dtype=np.float32),
        np.ascontiguousarray(y_tr, dtype=np.int32),
        np.ascontiguousarray(x_te, dtype=np.float32),
        np.ascontiguousarray(y_te, dtype=np.int32),
    )


# --------------------------------------------------------------------------------------------
# two moons


def _moons(key: jax.Array, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """sklearn ``make_moons(n, shuffle=True, noise=noise)`` geometry with JAX randomness."""
    k_perm, k_noise = jax.random.split(key)
    n_out = n // 2
    n_in = n - n_out
    t_out = np.linspace(0.0, np.pi, n_out)
    t_in = np.linspace(0.0, np.pi, n_in)
    x = np.concatenate(
        [
            np.stack([np.cos(t_out), np.sin(t_out)], axis=1),
            np.stack([1.0 - np.cos(t_in), 1.0 - np.sin(t_in) - 0.5], axis=1),
        ]
    ).astype(np.float32)
    y = np.concatenate([np.zeros(n_out, np.int32), np.ones(n_in, np.int32)])
    perm = np.asarray(jax.random.permutation(k_perm, n))
    eps = np.asarray(jax.random.normal(k_noise, (n, 2), dtype=jnp.float32))
    x = x[perm] + np.float32(noise) * eps
    return x.astype(np.float32), y[perm]


def two_moons_with_flips(
    key: jax.Array,
    n: int,
    *,
    noise: float,
    label_flip: float = 0.0,
    n_test: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two interleaving half circles (sklearn ``make_moons``) with exact training label noise.

    Geometry as ``sklearn.datasets.make_moons``: ``n // 2`` points of class 0 at
    ``(cos t, sin t)`` and ``n - n // 2`` of class 1 at ``(1 - cos t, 0.5 - sin t)`` with ``t``
    evenly spaced on ``[0, pi]``, shuffled, plus isotropic Gaussian noise of std ``noise``.
    Raw coordinates, nothing standardized. Exactly ``round(label_flip * n)`` training labels,
    chosen uniformly at random without replacement, are flipped (``y -> 1 - y``). The test set
    (its own shuffle and noise draw) is clean. The random draws for positions do not depend
    on ``label_flip``, so the same key with ``label_flip=0`` gives the clean labels.

    Args:
        key: JAX PRNG key.
        n: number of training points (>= 1).
        noise: std of the Gaussian position noise (>= 0).
        label_flip: fraction in ``[0, 1]`` of training labels to flip.
        n_test: number of test points; defaults to ``n``.

    Returns:
        ``(x_train (n, 2) float32, y_train (n,) int32, x_test (n_test, 2) float32,
        y_test (n_test,) int32, flipped (n,) bool)`` where ``flipped`` marks the training
        points whose label was flipped.

    References:
        Pedregosa et al., "Scikit-learn: Machine Learning in Python", JMLR 2011
        (``make_moons``).
    """
    check_key(key, "two_moons")
    check_positive_int("n", n)
    n_test = n if n_test is None else n_test
    check_positive_int("n_test", n_test)
    check_nonnegative("noise", noise)
    check_closed_unit_interval("label_flip", label_flip)

    k_train, k_test, k_flip = jax.random.split(key, 3)
    x_tr, y_tr = _moons(k_train, n, float(noise))
    x_te, y_te = _moons(k_test, n_test, float(noise))

    y_tr, flipped = flip_labels(k_flip, y_tr, 2, label_flip)
    return (*as_outputs(x_tr, y_tr, x_te, y_te), flipped)


def flip_labels(
    key: jax.Array, y, num_classes: int, fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Replace exactly ``round(fraction * N)`` labels by a uniformly drawn *different* class.

    The flipped examples are the first ``round(fraction * N)`` of
    ``jax.random.permutation(key, N)``; each gets ``(y + u) % K`` with ``u`` uniform in
    ``{1, ..., K-1}`` drawn with ``fold_in(key, 1)`` (for K = 2: ``1 - y``).

    Args:
      key: PRNG key.
      y: integer labels (N,) in [0, K).
      num_classes: K >= 2.
      fraction: in [0, 1].

    Returns:
      ``(y_noisy (N,) int32, flipped (N,) bool)``.
    """
    check_closed_unit_interval("fraction", fraction)
    y = np.asarray(y)
    check_labels("y", y, num_classes)
    n_flip = int(round(float(fraction) * y.shape[0]))
    flipped = np.zeros(y.shape, bool)
    y_noisy = y.astype(np.int32).copy()
    if n_flip:
        idx = np.asarray(jax.random.permutation(key, y.shape[0]))[:n_flip]
        offset = np.asarray(
            jax.random.randint(jax.random.fold_in(key, 1), (n_flip,), 1, num_classes)
        )
        y_noisy[idx] = (y[idx] + offset) % num_classes
        flipped[idx] = True
    return y_noisy, flipped


def two_moons(
    key: jax.Array,
    n: int,
    *,
    noise: float,
    label_flip: float = 0.0,
    n_test: int | None = None,
) -> tuple[np.ndarray, ...]:
    """Two moons with ``round(label_flip * n)`` flipped training labels.

    Same as :func:`two_moons_with_flips` without the flip mask.

    Returns:
        ``(x_train (n, 2), y_train (n,), x_test (n_test, 2), y_test (n_test,))``.
    """
    x_tr, y_tr, x_te, y_te, _ = two_moons_with_flips(
        key, n, noise=noise, label_flip=label_flip, n_test=n_test
    )
    return x_tr, y_tr, x_te, y_te


# --------------------------------------------------------------------------------------------
# synthetic deep mutational scanning (viral escape)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3, 4))
def _dms_escape(n, num_sites, num_substitutions, num_surface, num_hotspots, key, rates):
    effect_fraction, effect_scale, mean_mutations, hill, offset, noise = rates
    sites, subs = num_sites, num_substitutions
    k_surf, k_hot, k_has, k_size, k_count, k_where, k_sub, k_noise = jax.random.split(key, 8)
    surface_sites = jax.random.permutation(k_surf, sites)[:num_surface]
    hot_sites = jax.random.permutation(k_hot, surface_sites)[:num_hotspots]
    surface = jnp.zeros(sites, bool).at[surface_sites].set(True)
    hotspot = jnp.zeros(sites, bool).at[hot_sites].set(True)
    has = jax.random.bernoulli(k_has, effect_fraction, (sites, subs)) & hotspot[:, None]
    size = effect_scale * jax.random.exponential(k_size, (sites, subs))
    effects = jnp.where(has, size, 0.0).reshape(-1)
    # K ~ Poisson mutated sites per variant: the K smallest of L uniforms (distinct sites).
    count = jnp.minimum(jax.random.poisson(k_count, mean_mutations, (n,)), sites)
    rank = jnp.argsort(jnp.argsort(jax.random.uniform(k_where, (n, sites)), axis=1), axis=1)
    mutated = rank < count[:, None]
    sub = jax.random.randint(k_sub, (n, sites), 0, subs)
    x = (jax.nn.one_hot(sub, subs) * mutated[..., None].astype(jnp.float32)).reshape(n, -1)
    latent = x @ effects
    y = jax.nn.sigmoid(hill * (latent - offset)) + noise * jax.random.normal(k_noise, (n,))
    return x, y, effects, surface, hotspot, latent


def dms_escape(
    n: int,
    *,
    key: jax.Array,
    num_sites: int = 60,
    num_substitutions: int = 19,
    num_surface: int = 20,
    num_hotspots: int = 6,
    effect_fraction: float = 0.5,
    effect_scale: float = 1.0,
    mean_mutations: float = 3.0,
    hill: float = 1.0,
    offset: float = 1.5,
    noise: float = 0.05,
) -> dict[str, np.ndarray]:
    """A synthetic deep-mutational-scanning (DMS) antibody-escape library.

    Model (every draw from ``key``; the library — surface, hotspots, effects — depends on
    ``key`` only, so calls with the same key and a different ``n`` share it):

    * A protein of ``L = num_sites`` sites, each with ``A = num_substitutions`` possible
      amino-acid substitutions (19: every non-wild-type residue). A variant is encoded
      one-hot: feature ``j = i·A + a`` is 1 if site ``i`` carries substitution ``a``
      (``d = L·A`` features; the wild type is all zeros).
    * ``num_surface`` sites, chosen uniformly, are on the protein's surface; the antibody's
      epitope is ``num_hotspots`` of them ("hotspots", chosen uniformly among the surface
      sites). Only substitutions at hotspots have an escape effect: each, with probability
      ``effect_fraction``, has ``β_j = effect_scale · Exp(1) > 0``; all other ``β_j = 0``.
    * Each variant carries ``K ~ Poisson(mean_mutations)`` mutations (at most ``L``) at ``K``
      distinct sites chosen uniformly, each a uniform substitution.
    * Readout: effects add in the log-IC50 scale, ``φ = xᵀβ`` (Otwinowski, McCandlish &
      Plotkin 2018, "Inferring the shape of global epistasis", PNAS; Greaney et al. 2021,
      Cell Host & Microbe, for escape mapping). The fraction escaping neutralization at a
      fixed antibody concentration ``c`` is the Hill curve ``1 / (1 + (c/IC50)^h)`` with
      ``IC50 = IC50_wt · e^φ``, i.e. ``sigmoid(h · (φ − offset))`` with ``h = hill`` and
      ``offset = log(c / IC50_wt)``. The measured escape score adds Gaussian noise:
      ``y = sigmoid(h(φ − offset)) + noise · N(0, 1)``.

    Args:
      n: number of variants.
      key: JAX PRNG key.
      num_sites, num_substitutions: ``L`` and ``A``.
      num_surface: surface sites (``num_hotspots <= num_surface <= num_sites``).
      num_hotspots: epitope sites carrying all the escape effects.
      effect_fraction: probability that a substitution at a hotspot has an effect.
      effect_scale: mean effect size (log-IC50 units).
      mean_mutations: Poisson mean of the number of mutations per variant.
      hill: Hill coefficient ``h`` (> 0).
      offset: ``log(c / IC50_wt)``; the wild type escapes with ``sigmoid(−h·offset)``.
      noise: standard deviation of the measurement noise (≥ 0).

    Returns:
      dict of numpy arrays: ``x`` (n, L·A) float32 one-hot variants, ``y`` (n,) float32
      escape scores, ``effects`` (L·A,) float32 true ``β``, ``surface`` (L,) bool,
      ``hotspot`` (L,) bool (the true escape sites), ``latent`` (n,) float32 ``φ``.
    """
    check_key(key, "dms_escape")
    check_positive_int("n", n)
    check_positive_int("num_sites", num_sites)
    check_positive_int("num_substitutions", num_substitutions)
    check_nonneg_int("num_hotspots", num_hotspots)
    if not num_hotspots <= num_surface <= num_sites:
        raise ValueError(
            f"need num_hotspots <= num_surface <= num_sites, got {num_hotspots}, "
            f"{num_surface}, {num_sites}."
        )
    check_closed_unit_interval("effect_fraction", effect_fraction)
    for name, value in (("effect_scale", effect_scale), ("mean_mutations", mean_mutations)):
        check_nonnegative(name, value)
    check_nonnegative("noise", noise)
    if not hill > 0:
        raise ValueError(f"hill must be > 0, got {hill!r}.")
    check_finite("offset", np.asarray(offset))
    rates = tuple(
        jnp.asarray(v, jnp.float32)
        for v in (effect_fraction, effect_scale, mean_mutations, hill, offset, noise)
    )
    out = _dms_escape(n, num_sites, num_substitutions, num_surface, num_hotspots, key, rates)
    names = ("x", "y", "effects", "surface", "hotspot", "latent")
    return {k: np.asarray(v) for k, v in zip(names, out, strict=True)}


def gaussian_mixture(key: jax.Array, n: int, centers: Any, std: float) -> jax.Array:
    """``n`` samples of the equal-weight isotropic Gaussian mixture Σ_m N(c_m, std² I) / M.

    The 2-D toys of GAN papers (ring of 8, 5 × 5 grid of 25; Metz et al. 2017, Srivastava
    et al. 2017, Gulrajani et al. 2017) pass their means as ``centers``. Jit-able.

    Args:
      key: PRNG key (component choice and noise).
      n: number of samples (static).
      centers: mixture means, shape (M, d).
      std: component standard deviation σ >= 0.

    Returns:
      float32 array of shape (n, d).
    """
    check_nonnegative("std", std)
    centers = jnp.asarray(centers, jnp.float32)
    k_mode, k_noise = jax.random.split(key)
    mode = jax.random.randint(k_mode, (n,), 0, centers.shape[0])
    return centers[mode] + std * jax.random.normal(k_noise, (n, centers.shape[1]), jnp.float32)
