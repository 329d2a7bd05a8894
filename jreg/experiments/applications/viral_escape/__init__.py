"""Regularized regression for n ≪ d: mapping antibody-escape mutations.

The survey's application (``../shared/reference``, "viral evolution"): a deep mutational
scan measures the escape of a few hundred variants, but the model has a coefficient per
(site, substitution) pair — here 40 × 19 = 760. Without regularization the problem is
underdetermined; ridge (Gaussian prior) shrinks every effect, the lasso (Laplace prior)
keeps a few ("hotspot" residues of the epitope), and a per-site prior — a weaker penalty
on surface sites, as glmnet's penalty factors — encodes that mutations buried in the
core rarely change antibody binding.

Data: :func:`jreg.data.dms_escape` (one library per seed: surface, hotspots, effects).
Fits: :mod:`jreg.analysis.linear` (scikit-learn's objectives), each strength picked by the mean
squared error on a separate validation set, the solvers ``vmap``-ed over strengths,
penalty factors and seeds. Numbers per training size ``n``: Pearson correlation of the
estimated and true effects, AUROC of ranking the true escape sites (hotspots) by the
site's summed positive effects (``Σ_a max(w_ia, 0)``, "site total escape" as in Greaney
et al. 2021), and R² on held-out variants.

The prior's quality is swept (:mod:`.prior`): from random surface labels (uninformative)
to the true ones (the oracle). The hotspots are drawn among the surface sites, so the
oracle prior's AUROC gain holds by construction; the sweep shows how much of it survives
a prior that is only partly right.
"""

from __future__ import annotations

import functools

import jax
import numpy as np
from tqdm.auto import tqdm

from jreg import data
from jreg.analysis import metrics
from jreg.experiments import kit
from jreg.experiments.kit import mean_std
from jreg.util import checks

from . import prior
from .fits import METHODS, fit_all, scores

DESCRIPTION = (
    "Viral escape (synthetic DMS, 40 sites × 19 substitutions): ridge, lasso, elastic net "
    "and a surface-site prior (penalty factors) for n ≪ d up to n = d."
)

#: The config keys that describe the library (:func:`jreg.data.dms_escape`'s arguments).
_LIBRARY = tuple(
    "num_sites num_substitutions num_surface num_hotspots effect_fraction effect_scale "
    "mean_mutations hill offset noise".split()
)


def get_config(quick: bool = False) -> dict:
    """Library of :func:`jreg.data.dms_escape`; training sizes as fractions of d."""
    full = {
        "seeds": 5,  # one library (and its variants) per seed
        "num_sites": 40,
        "num_substitutions": 19,
        "num_surface": 14,
        "num_hotspots": 4,
        "effect_fraction": 0.5,
        "effect_scale": 1.0,
        "mean_mutations": 3.0,
        "hill": 1.0,
        "offset": 1.5,
        "noise": 0.05,
        "train_fractions": (0.05, 0.1, 0.2, 0.5, 1.0),
        "val_fraction": 0.25,  # validation variants per training variant
        "min_val": 20,
        "test_size": 2000,
        "ridge_alphas": (1e-2, 1e-1, 1.0, 10.0, 1e2, 1e3, 1e4),  # sklearn's ‖r‖² + α‖w‖²
        "num_alphas": 10,  # lasso / elastic-net grid: α_max · [1 .. alpha_ratio], log-spaced
        "alpha_ratio": 1e-2,
        "l1_ratio": 0.5,  # elastic net
        "surface_factor": 0.25,  # penalty factor of surface sites (buried: 1)
        # Prior quality (.prior): 0 = random labels, 1 = oracle (needed; the five methods
        # use it); the oracle's gain holds by construction (hotspots ⊂ surface sites).
        "prior_qualities": (0.0, 0.25, 0.5, 0.75, 1.0),
        "published": {"source": "none (synthetic DMS library, jreg.data.dms_escape)"},
        "tol": 1e-3,  # coordinate descent KKT tolerance (relative)
        "max_iter": 500,
    }
    quick_overrides = dict(
        seeds=3, num_sites=30, num_surface=10, num_hotspots=3, train_fractions=(0.1, 1.0),
        test_size=500, prior_qualities=(0.0, 0.5, 1.0),
    )  # fmt: skip
    return kit.sized(quick, full, quick_overrides=quick_overrides)


def compute(config: dict, run: kit.Run = kit.QUIET) -> dict:
    """Every fit for every (training size, seed); metrics with axes (n, seed, method).

    Seed ``s`` draws one library and ``max n + max validation + test_size`` variants from
    ``jax.random.key(s)``; the training (validation) sets are the first ``n`` (``m``) of
    their pools, so larger sets contain the smaller ones.
    """
    lib = {k: config[k] for k in _LIBRARY}
    sites, d = config["num_sites"], config["num_sites"] * config["num_substitutions"]
    ns = [max(4, round(f * d)) for f in config["train_fractions"]]
    ms = [max(config["min_val"], round(config["val_fraction"] * n)) for n in ns]
    n_max, m_max, s = max(ns), max(ms), config["seeds"]
    draws = [
        data.dms_escape(n_max + m_max + config["test_size"], key=checks.seed_key(i), **lib)
        for i in range(s)
    ]
    x = np.stack([g["x"] for g in draws])  # (S, N, d)
    y = np.stack([g["y"] for g in draws])
    qs = [float(q) for q in config["prior_qualities"]]
    if 1.0 not in qs:
        raise ValueError(f"prior_qualities must include 1.0 (the oracle), got {qs}.")
    labels = np.stack([prior.prior_labels(g["surface"], qs, i) for i, g in enumerate(draws)])
    factors = np.where(labels, config["surface_factor"], 1.0).astype(np.float32)
    factors = np.repeat(factors, d // sites, axis=2)  # (S, Q, d)
    nq, oracle = len(qs), qs.index(1.0)
    cols = [0, 1, 2, 3 + oracle, 3 + nq + oracle]  # METHODS among the 3 + 2Q fits
    ridge_alphas = np.asarray(config["ridge_alphas"], np.float32)
    kw = {k: config[k] for k in ("alpha_ratio", "l1_ratio", "tol", "max_iter")}
    fit = jax.vmap(
        functools.partial(fit_all, num_alphas=config["num_alphas"], **kw),
        in_axes=(0, 0, 0, 0, 0, None),
    )
    shape = (len(ns), s, 3 + 2 * nq)
    corr, auroc, r2, alpha, kkt, nonzero = (np.zeros(shape) for _ in range(6))
    test = slice(n_max + m_max, None)
    sizes = tqdm(list(enumerate(zip(ns, ms, strict=True))), desc="n", disable=not run.progress)
    for i, (n, m) in sizes:
        val = slice(n_max, n_max + m)
        out = fit(x[:, :n], y[:, :n], x[:, val], y[:, val], factors, ridge_alphas)
        coef, intercept, alpha[i], kkt[i] = (np.asarray(o) for o in out)
        nonzero[i] = d - np.asarray(jax.vmap(jax.vmap(metrics.count_zeros))(out[0]))
        for j in range(s):
            g = draws[j]
            for k in range(shape[2]):
                fit_k = (coef[j, k], intercept[j, k])
                truth = (g["effects"], g["hotspot"], x[j, test], y[j, test])
                corr[i, j, k], auroc[i, j, k], r2[i, j, k] = scores(*fit_k, *truth, sites)
    weighted = lambda v: v[..., 3:].reshape(*v.shape[:2], 2, nq).swapaxes(2, 3)  # (n,S,Q,2)
    numbers = dict(
        methods=list(METHODS), train_sizes=np.asarray(ns), val_sizes=np.asarray(ms),
        num_features=d, correlation=corr[..., cols], auroc=auroc[..., cols], r2=r2[..., cols],
        alpha=alpha[..., cols], nonzero=nonzero[..., cols], kkt=kkt,
        prior_quality=np.asarray(qs), prior_auroc=weighted(auroc),
        prior_correlation=weighted(corr), **prior.label_stats(labels, draws),
    )  # fmt: skip
    numbers["notes"], numbers["headline"] = _summarize(numbers, config)
    more_notes, more_headline = prior.summarize(numbers, config)
    numbers["notes"] += more_notes
    numbers["headline"].update(more_headline)
    return numbers


def _summarize(num: dict, config: dict) -> tuple[list[str], dict]:
    """Notes and headline, computed from the numbers."""
    ns, d, names = num["train_sizes"], num["num_features"], num["methods"]
    corr, auroc, r2 = num["correlation"], num["auroc"], num["r2"]
    m = {name: k for k, name in enumerate(names)}
    notes = []
    for i in (0, len(ns) - 1):
        means = {k: (corr[i, :, m[k]].mean(), auroc[i, :, m[k]].mean()) for k in names}
        best_auc = max(names, key=lambda k: means[k][1])
        best_corr = max(names, key=lambda k: means[k][0])
        ridge_auc, ridge_corr = auroc[i, :, m["ridge"]], corr[i, :, m["ridge"]]
        aucs = np.asarray([v[1] for v in means.values()])
        if np.ptp(aucs) == 0:
            sites = f"every fit ranks the true escape sites alike (AUROC {aucs[0]:.3f})"
        else:
            sites = (
                f"{best_auc} ranks the true escape sites best (AUROC "
                f"{mean_std(auroc[i, :, m[best_auc]], '.3f')} vs ridge "
                f"{mean_std(ridge_auc, '.3f')}, a gain of "
                f"{means[best_auc][1] - ridge_auc.mean():+.3f})"
            )
        notes.append(
            f"n = {ns[i]} (n/d = {ns[i] / d:.2f}): {sites}; "
            f"{best_corr} correlates best with the true effects "
            f"({mean_std(corr[i, :, m[best_corr]], '.3f')} vs ridge {mean_std(ridge_corr, '.3f')})."
        )
    small = ns <= d / 5
    for base, weighted in (("ridge", "weighted ridge"), ("lasso", "weighted lasso")):
        gain = auroc[small, :, m[weighted]] - auroc[small, :, m[base]]
        cgain = corr[small, :, m[weighted]] - corr[small, :, m[base]]
        notes.append(
            f"For n ≤ d/5 ({', '.join(str(n) for n in ns[small])}), the oracle surface prior "
            f"(factor {config['surface_factor']}) "
            f"{'raises' if gain.mean() > 0 else 'does not raise'} {base}'s site AUROC on "
            f"average by {gain.mean():+.3f} (better in {int((gain > 0).sum())} of {gain.size} "
            f"(n, seed) cases, worse in {int((gain < 0).sum())}) "
            f"and its effect correlation by {cgain.mean():+.3f}."
        )
    last = len(ns) - 1
    best_r2 = max(names, key=lambda k: r2[last, :, m[k]].mean())
    notes.append(
        f"At n = {ns[last]} the best held-out R² is {best_r2}'s "
        f"({mean_std(r2[last, :, m[best_r2]], '.3f')}; "
        f"ridge {mean_std(r2[last, :, m['ridge']], '.3f')}, "
        f"lasso {mean_std(r2[last, :, m['lasso']], '.3f')}); the lasso keeps "
        f"{num['nonzero'][last, :, m['lasso']].mean():.0f} of {d} coefficients non-zero on "
        f"average (ridge {num['nonzero'][last, :, m['ridge']].mean():.0f})."
    )
    empty = num["nonzero"][0, :, m["lasso"]] == 0
    notes.append(
        f"At n = {ns[0]} validation chose the all-zero lasso in {int(empty.sum())} of "
        f"{empty.size} seeds; the largest relative KKT violation of any coordinate-descent fit "
        f"is {num['kkt'].max():.1e} (tolerance {config['tol']:g}, "
        f"{'all converged' if num['kkt'].max() <= config['tol'] else 'some stopped at max_iter'})."
    )
    headline = {}
    for i in (0, last):
        for k in ("ridge", "lasso", "weighted ridge", "weighted lasso"):
            headline[f"n={ns[i]}: site AUROC, {k}"] = mean_std(auroc[i, :, m[k]], ".3f")
        for k in ("ridge", "lasso"):
            headline[f"n={ns[i]}: effect correlation, {k}"] = mean_std(corr[i, :, m[k]], ".3f")
    return notes, headline


def figure(numbers: dict, config: dict):
    """Correlation, site AUROC, held-out R², non-zeros vs training size (mean ± std over
    seeds); the AUROC gain of the surface prior vs its quality."""
    ns, d = np.asarray(numbers["train_sizes"]), numbers["num_features"]
    fig, axes = kit.panels(5, size=(4.0, 3.3))
    panels = (
        ("correlation", "corr(estimated, true effects)"),
        ("auroc", "AUROC of the true escape sites"),
        ("r2", "held-out R²"),
        ("nonzero", "non-zero coefficients"),
    )
    for ax, (key, label) in zip(axes[:4], panels, strict=True):
        values = np.asarray(numbers[key])  # (n, seed, method)
        for k, name in enumerate(numbers["methods"]):
            style = "--" if name.startswith("weighted") else "-"
            kit.band(ax, ns, values[:, :, k], axis=1, label=name, ls=style, marker=".")
        ax.set_xscale("log")
        ax.set_xticks(ns, [str(n) for n in ns])
        ax.set_xticks([], minor=True)
        ax.set(xlabel="training variants n", ylabel=label)
        ax.axvline(d, color="k", lw=0.6, ls=":")
    axes[1].axhline(0.5, color="gray", lw=0.6)
    axes[3].set_yscale("log")
    axes[0].legend(fontsize=7)
    prior.panel(axes[4], numbers)
    fig.suptitle(
        f"Viral escape, d = {d} effects ({config['num_sites']} sites × "
        f"{config['num_substitutions']}), {config['num_hotspots']} hotspot sites; mean ± std "
        f"over {config['seeds']} libraries (dotted: n = d)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig
