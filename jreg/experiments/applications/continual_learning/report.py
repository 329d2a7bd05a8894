"""Continual learning's numbers: strength choice, ours vs published, pattern checks, figure.

Used by :mod:`.continual_learning`: :func:`summarize` turns the sweeps' histories into
the experiment's numbers (every sentence in ``notes`` computed from them), :func:`figure`
draws ours beside Hsu et al.'s.
"""

from __future__ import annotations

import numpy as np

from jreg.experiments import kit

from .ewc import SCENARIOS

#: Split MNIST, average accuracy after the last task (percent) per scenario
#: (task-IL, domain-IL, class-IL). Fine-tuning is Hsu et al.'s "Adam" row (our optimizer).
PUBLISHED = {
    "source": "Hsu et al. 2018, 'Re-evaluating continual learning scenarios', Table 2 "
    "(split MNIST, 10 runs; MLP 2 x 400, 4 epochs per task, batch 128, Adam 1e-3)",
    "hsu": {
        "fine-tuning": (93.46, 55.16, 19.71),  # their "Adam"
        "fine-tuning (SGD)": (97.98, 63.20, 19.46),
        "L2": (98.18, 66.00, 22.52),
        "EWC": (97.70, 58.85, 19.80),
        "online EWC": (98.04, 57.33, 19.77),
        "SI": (98.56, 64.76, 19.67),
        "joint": (99.52, 98.59, 97.53),  # their "offline"
    },
    "van_de_ven_source": "van de Ven & Tolias 2019, 'Three scenarios for continual "
    "learning', split MNIST (MLP 2 x 400, Adam, 2,000 iterations per task)",
    "van_de_ven": {
        "fine-tuning": (87.19, 59.21, 19.90),  # their "none"
        "EWC": (98.64, 63.95, 20.01),
        "joint": (99.66, 98.42, 97.94),  # their "offline"
    },
}
#: Chance accuracy per scenario: 2-way, 2-way, 10-way.
CHANCE = {"task-IL": 0.5, "domain-IL": 0.5, "class-IL": 0.1}


def _forgetting(matrix):
    """Chaudhry et al. 2018: ``mean_{i<T-1} max_{j<T-1} R[j, i] − R[T-1, i]``."""
    best = np.max(matrix[..., :-1, :-1], axis=-2)
    return (best - matrix[..., -1, :-1]).mean(-1)


def _scenario(config, i, sc, rows, hist, jhist, arms) -> dict:
    """One scenario's numbers: the best strength per arm (on validation), ours vs published."""
    idx = [h for h, r in enumerate(rows) if r[0] == sc]
    test, val = hist["test"][idx], hist["val"][idx]  # (H_sc, S, T, T)
    val_avg, avg = val[..., -1, :].mean(-1), test[..., -1, :].mean(-1)  # (H_sc, S)
    best, ours, verdicts, published = {}, {}, {}, {}
    for arm in arms:
        cand = [k for k, h in enumerate(idx) if rows[h][1] == arm]
        k = max(cand, key=lambda k: val_avg[k].mean())
        best[arm] = {"row": k, "strength": rows[idx[k]][2], "val_average": val_avg[k].mean()}
        ours[arm] = avg[k]
    ours["joint"] = jhist["test"][i, :, -1].mean(-1)  # (S,)
    for arm, m in ours.items():
        published[arm] = PUBLISHED["hsu"][arm][i] / 100
        verdicts[arm] = kit.verdict(m.mean(), published[arm], tol=config["tolerance"])
    ft = test[best["fine-tuning"]["row"]].mean(0)  # (T, T)
    return {
        "matrix": test, "average": avg, "forgetting": _forgetting(test), "val_average": val_avg,
        "rows": [f"{rows[h][1]} λ={rows[h][2]:g}" for h in idx], "best": best,
        "ours": ours, "published": published, "verdict": verdicts, "chance": CHANCE[sc],
        "fine_tuning_just_learnt": np.diag(ft),  # accuracy on task j right after it
        # a network that knows only the last task scores its accuracy on 1 task in T
        "last_task_only": {a: test[best[a]["row"], :, -1, -1].mean() / ft.shape[0] for a in arms},
    }  # fmt: skip


def summarize(config, rows, hist, jhist, arms) -> dict:
    """The numbers, headline and notes from the sequential and joint sweeps' histories."""
    out = {sc: _scenario(config, i, sc, rows, hist, jhist, arms) for i, sc in enumerate(SCENARIOS)}
    mean = {sc: {a: float(np.mean(v)) for a, v in out[sc]["ours"].items()} for sc in SCENARIOS}
    high, ptol, tol = config["high"], config["pattern_tolerance"], config["tolerance"]
    ti, ci = mean["task-IL"], out["class-IL"]
    pattern = {
        "fine-tuning learns each task (>= 0.95 on the task just learnt)": all(
            out[sc]["fine_tuning_just_learnt"].min() >= 0.95 for sc in SCENARIOS
        ),
        f"task-IL high (>= {high}) for every arm": min(ti.values()) >= high,
        f"class-IL within {ptol} of the last task only, every sequential arm": all(
            abs(mean["class-IL"][a] - ci["last_task_only"][a]) <= ptol for a in arms
        ),
        f"joint high (>= {high}) and above every sequential arm, every scenario": all(
            m["joint"] >= max(high, *(m[a] for a in arms)) for m in mean.values()
        ),
        f"class-IL: EWC within {ptol} of fine-tuning": abs(
            mean["class-IL"]["EWC"] - mean["class-IL"]["fine-tuning"]
        )
        <= ptol,
    }
    headline, notes = {}, []
    for sc in SCENARIOS:
        o = out[sc]
        headline[f"{sc} (Hsu et al.)"] = ", ".join(
            f"{a} {mean[sc][a]:.3f} ({o['published'][a]:.3f})" for a in mean[sc]
        )
        just = o["fine_tuning_just_learnt"]
        notes.append(
            f"{sc} (chance {o['chance']}): fine-tuning scores {just.min():.3f}–"
            f"{just.max():.3f} on the task just learnt and averages "
            f"{mean[sc]['fine-tuning']:.3f} after the last task; joint training "
            f"{mean[sc]['joint']:.3f}; strengths chosen on validation: "
            + ", ".join(f"{a} λ={o['best'][a]['strength']:g}" for a in arms[1:])
            + "."
        )
    counts = {
        v: [f"{sc} {a}" for sc in SCENARIOS for a, w in out[sc]["verdict"].items() if w == v]
        for v in ("agrees", "better", "worse")
    }
    headline[f"verdicts vs Hsu et al. (±{tol:g})"] = ", ".join(
        f"{len(v)} {k}" for k, v in counts.items()
    )
    notes.append(
        f"Against Hsu et al. 2018 (tolerance ±{tol}): {len(counts['agrees'])} of "
        f"{sum(map(len, counts.values()))} agree; better: {', '.join(counts['better']) or 'none'}"
        f"; worse: {', '.join(counts['worse']) or 'none'}."
    )
    notes.append(
        "Class-IL: "
        + ", ".join(
            f"{a} {mean['class-IL'][a]:.3f} (last task only {ci['last_task_only'][a]:.3f})"
            for a in arms
        )
        + f"; EWC − fine-tuning = {mean['class-IL']['EWC'] - mean['class-IL']['fine-tuning']:+.3f}"
        " (Hsu et al. +0.001, van de Ven & Tolias +0.001)."
    )
    notes.append(
        f"Task-IL: EWC − fine-tuning = {ti['EWC'] - ti['fine-tuning']:+.3f} (Hsu et al.: "
        "EWC − Adam +0.042, EWC − SGD −0.003; van de Ven & Tolias: EWC − none +0.115)."
    )
    holds = [k for k, v in pattern.items() if v]
    notes.append(
        f"Published pattern: holds — {'; '.join(holds) or 'none'}; fails — "
        f"{'; '.join(k for k, v in pattern.items() if not v) or 'none'}."
    )
    headline["pattern checks passed"] = f"{len(holds)} of {len(pattern)}"
    return {**out, "pattern": pattern, "headline": headline, "notes": notes}


def figure(numbers: dict, config: dict):
    """Per scenario: ours vs Hsu et al. per arm (top); final accuracy per task (bottom)."""
    fig, axes = kit.panels(2 * len(SCENARIOS), ncols=len(SCENARIOS), size=(4.6, 3.2))
    for c, sc in enumerate(SCENARIOS):
        o = numbers[sc]
        names = list(o["ours"])
        ax, x = axes[c], np.arange(len(names))
        ours = [np.asarray(o["ours"][a]) for a in names]
        ax.bar(x - 0.2, [m.mean() for m in ours], 0.4, yerr=[m.std() for m in ours], label="ours")
        ax.bar(x + 0.2, [o["published"][a] for a in names], 0.4, label="Hsu et al. 2018")
        ax.axhline(o["chance"], color="k", ls=":", label="chance")
        ax.set_xticks(x, names, rotation=30, fontsize=7)
        ax.set_title(f"split MNIST, {sc}")
        ax.set_ylabel("average accuracy after task 5")
        ax.legend(fontsize=7)
        ax = axes[len(SCENARIOS) + c]
        for a, b in o["best"].items():
            final = np.asarray(o["matrix"])[b["row"]][:, -1].mean(0)
            ax.plot(np.arange(1, len(final) + 1), final, "o-", label=f"{a} λ={b['strength']:g}")
        ax.axhline(o["chance"], color="k", ls=":")
        ax.set_xlabel("task")
        ax.set_ylabel("test accuracy after task 5")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=6)
    return fig
