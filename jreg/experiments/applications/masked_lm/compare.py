""":mod:`.masked_lm` beside BERT's masking ablation (Devlin et al. 2019, App. C.2)."""

from __future__ import annotations

import numpy as np
from scipy import stats


def ordering(num: dict, config: dict) -> tuple[list[str], dict, dict]:
    """Ours beside BERT's ablation: rank correlation over the rules run, 80/10/10 vs 100/0/0."""
    pub = config["published"]["ner_feature_based_dev_f1"]
    rules = [r for r in num["rules"] if r in pub]
    theirs = np.asarray([pub[r] for r in rules])
    out, notes = {"rules": rules, "published_f1": theirs}, []
    for key in ("probe_next_accuracy", "probe_token_accuracy", "masked_accuracy"):
        ours = np.asarray([num[key][num["rules"].index(r)].mean() for r in rules])
        rho = float(stats.spearmanr(theirs, ours).statistic) if len(rules) > 2 else np.nan
        both = {"80/10/10", "100/0/0"} <= set(rules)
        i, j = (rules.index("80/10/10"), rules.index("100/0/0")) if both else (0, 0)
        beats = bool(both and ours[i] > ours[j])
        agrees = bool(rho >= config["min_rank_correlation"] and beats and theirs[i] > theirs[j])
        out[key] = {"ours": ours, "spearman": rho, "80/10/10 > 100/0/0": beats}
        out[key]["verdict"] = "agrees" if agrees else "disagrees"
        notes.append(
            "Beside BERT's ablation (NER feature-based dev F1 "
            + ", ".join(f"{r} {f:g}" for r, f in zip(rules, theirs, strict=True))
            + f"), our {key.replace('_', ' ')} ranks the {len(rules)} rules with Spearman ρ = "
            f"{rho:.2f}; 80/10/10 > 100/0/0 {'holds' if beats else 'does not hold'} for ours "
            f"({ours[i]:.4f} vs {ours[j]:.4f}) and {'holds' if theirs[i] > theirs[j] else 'not'}"
            f" for theirs; ordering {out[key]['verdict']} (needs ρ ≥ "
            f"{config['min_rank_correlation']:g} and both)."
        )
    main = out[config["ordering_metric"]]
    headline = {
        f"ordering vs BERT F1 ({config['ordering_metric']})": f"ρ = {main['spearman']:.2f}, "
        f"80/10/10 > 100/0/0: {main['80/10/10 > 100/0/0']}, {main['verdict']}"
    }
    return notes, headline, out


def panel(ax, num: dict, config: dict) -> None:
    """Our ordering metric (mean ± 95 % CI) against BERT's F1, one point per rule."""
    key, o = config["ordering_metric"], num["ordering"]
    ci = np.asarray(
        num[key.replace("_accuracy", "_ci95").replace("masked_ci", "masked_accuracy_ci")]
    )
    rows = [num["rules"].index(r) for r in o["rules"]]
    ax.errorbar(o["published_f1"], o[key]["ours"], yerr=ci[rows], fmt="o", capsize=4)
    for r, x, y in zip(o["rules"], o["published_f1"], o[key]["ours"], strict=True):
        ax.annotate(r, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set(xlabel="BERT NER feature-based dev F1 (published)", ylabel=f"ours: {key}")
    ax.set_title(f"ours vs published: Spearman ρ = {o[key]['spearman']:.2f}", fontsize=9)
