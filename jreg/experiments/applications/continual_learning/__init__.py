"""Continual learning on MNIST digits: fine-tuning, anchored L2, EWC, online EWC, joint.

Two scenarios (van de Ven & Tolias 2019, "Three scenarios for continual learning"; Hsu et
al. 2018) on the 5,000 offline MNIST digits (``data.mnist_digits``): **split MNIST**, 5
two-class tasks (0/1, ..., 8/9) of equal size learnt in turn by one 10-way softmax head,
evaluated *task-incrementally* (logits masked to the task's 2 classes: the task identity
is given) and *class-incrementally* (argmax over all 10); **permuted MNIST**,
``num_permutations`` fixed pixel permutations (the first the identity): *domain-incremental*.

Arms, in ONE vmapped sweep per scenario (penalty weights, 0 = off): fine-tuning; anchored
L2 ``(λ/2)‖θ − θ*‖²`` to the previous task's solution; EWC (Kirkpatrick et al. 2017)
``(λ/2) Σ_k F_k ⊙ (θ − θ*_k)²`` with one anchor and Fisher per earlier task; online EWC
(Schwarz et al. 2018) ``(λ/2) F̃ ⊙ (θ − θ*)²``, ``F̃ ← γ F̃ + F_k``, anchored at the latest
solution. Joint training on the union of all tasks (same epochs, a second sweep) is the
upper bound. Fisher: the EXACT expectation under the model's predictive distribution,
``mean_n Σ_c p(c | x_n) (∇ log p(c | x_n))²`` (not the empirical Fisher), averaged over the
minibatches of each task's last ``fisher_epochs`` epochs and consolidated at the switch.
"""

from __future__ import annotations

import jax
import numpy as np

from jreg import data
from jreg.core import streams
from jreg.experiments import kit, plotting
from jreg.experiments.kit import mean_std
from jreg.nn import nets
from jreg.util import checks

from .ewc import PENALTY, continual_task

DESCRIPTION = (
    "Split MNIST (5 two-class tasks; task- and class-incremental) and permuted MNIST "
    "(domain-incremental): fine-tuning vs anchored L2 vs EWC vs online EWC vs joint."
)

ARMS = ("fine-tuning", *PENALTY)
#: The evaluations of each scenario and their labels in the numbers.
LABELS = {
    "split": (("task_accuracy", "split task-IL"), ("accuracy", "split class-IL")),
    "permuted": (("accuracy", "permuted domain-IL"),),
}


def get_config(quick: bool = False) -> dict:
    """Reference setup: MLP 784-100-100-10 ReLU, Adam 1e-3, B=50, a few epochs per task."""
    full = {
        "seed": 0,  # data set, task split and permutations
        "seeds": 3,
        "n_train": 2000,  # of the 5,000 offline digits
        "n_test": 500,
        "num_permutations": 5,
        "widths": (784, 100, 100, 10),
        "learning_rate": 1e-3,
        "batch_size": 50,
        "epochs_per_task": {"split": 5, "permuted": 1},
        "fisher_epochs": 1,  # last epochs of a task whose minibatches give the Fisher
        "fisher_examples": 8,  # examples of each of those minibatches used
        "gamma": 1.0,  # online EWC decay (van de Ven & Tolias 2019 use 1)
        "strengths": dict(  # λ per arm
            anchor_l2=(0.01, 0.1, 1.0), ewc=(1e2, 1e3, 1e4), online_ewc=(1e2, 1e3, 1e4)
        ),
    }
    quick_overrides = dict(
        seeds=2, n_train=1000, n_test=200, widths=(784, 64, 64, 10),
        epochs_per_task={"split": 4, "permuted": 1},
        strengths=dict(anchor_l2=(0.1,), ewc=(1e4,), online_ewc=(1e4,)),
    )  # fmt: skip
    return kit.sized(quick, full, quick_overrides=quick_overrides)


def _scenarios(config) -> dict:
    """Stacked task data per scenario: ``{"tasks": {"x" (T,N,784), "y", "allowed" (T,N,10)},
    "test": {same, (T,Nt,...)}}``; ``allowed`` marks the classes of the example's task."""
    sizes, key = (config["n_train"], config["n_test"]), checks.seed_key(config["seed"])
    x_tr, y_tr, x_te, y_te = map(np.asarray, data.mnist_digits(*sizes, key=key))

    def split(x, y):
        idx = [np.flatnonzero((y // 2) == k) for k in range(5)]
        n = min(map(len, idx))  # equal sizes per task: subsample the larger ones
        xs, ys = np.stack([x[i[:n]] for i in idx]), np.stack([y[i[:n]] for i in idx])
        allowed = np.arange(10)[None, None] // 2 == np.arange(5)[:, None, None]
        return {"x": xs, "y": ys, "allowed": np.broadcast_to(allowed, (5, n, 10))}

    seed = checks.seed_key(config["seed"] + 1, "seed + 1")
    keys = jax.random.split(seed, config["num_permutations"])
    perms = [np.arange(784)] + [np.asarray(jax.random.permutation(k, 784)) for k in keys[1:]]

    def permuted(x, y):
        t = len(perms)
        xs, ys = np.stack([x[:, p] for p in perms]), np.broadcast_to(y, (t, len(y)))
        return {"x": xs, "y": ys, "allowed": np.ones((t, len(y), 10), bool)}

    both = lambda f: {"tasks": f(x_tr, y_tr), "test": f(x_te, y_te)}
    return {"split": both(split), "permuted": both(permuted)}


def _arms(strengths) -> tuple[list[tuple[str, float]], dict]:
    """Rows of the sweep: fine-tuning, then every arm at every strength (penalty weights)."""
    rows = [("fine-tuning", 0.0)]
    rows += [(arm, float(lam)) for arm in ARMS[1:] for lam in strengths[PENALTY[arm]]]
    weights = lambda name: [lam if PENALTY.get(arm) == name else 0.0 for arm, lam in rows]
    return rows, {name: np.asarray(weights(name), np.float32) for name in PENALTY.values()}


def summarize(matrix: np.ndarray) -> dict:
    """Average accuracy and forgetting after the last task from accuracy matrices.

    ``matrix[..., j, i]`` = accuracy on task i after training task j (T x T). Average
    accuracy: ``mean_i R[T-1, i]``; forgetting (Chaudhry et al. 2018): ``mean_{i<T-1}
    max_{j<T-1} R[j, i] − R[T-1, i]``. Returns arrays of shape ``matrix.shape[:-2]``.
    """
    last = matrix[..., -1, :]
    best = np.max(matrix[..., :-1, :-1], axis=-2)
    return {"average": last.mean(-1), "forgetting": (best - last[..., :-1]).mean(-1)}


def _evaluation(lab, mat, joint_avg, rows, names, headline, notes) -> dict:
    """One evaluation's numbers; its best strength per arm to ``headline``, a note to ``notes``."""
    summ, best = summarize(mat), {}
    for arm in ARMS:
        idx = [i for i, r in enumerate(rows) if r[0] == arm]
        i = max(idx, key=lambda i: summ["average"][i].mean())
        best[arm] = {"row": names[i], "index": i}
        headline[f"{lab}, {names[i]}"] = (
            f"avg {mean_std(summ['average'][i], '.3f')}, "
            f"forgetting {mean_std(summ['forgetting'][i], '.3f')}"
        )
    headline[f"{lab}, joint"] = f"avg {mean_std(joint_avg, '.3f')}"
    ft = summ["average"][0].mean()
    gains = {a: summ["average"][best[a]["index"]].mean() - ft for a in ARMS[1:]}
    notes.append(
        f"{lab}: fine-tuning averages {ft:.3f} after the last task, joint training "
        f"{joint_avg.mean():.3f}; the best strength of "
        + ", ".join(
            f"{a} {'gains' if g > 0 else 'changes it by'} {g:+.3f}" for a, g in gains.items()
        )
        + "."
    )
    return {"matrix": mat, **summ, "joint_average": joint_avg, "best": best}


def compute(config: dict, run: kit.Run = kit.QUIET) -> dict:
    """Per scenario: one sweep of arms x strengths x seeds, one joint sweep; matrices.

    Numbers per scenario and evaluation: accuracy matrices (H, S, T, T) (row j: after
    task j), average accuracy and forgetting (H, S), the joint upper bound (S,), and per
    arm the best strength (by mean final average accuracy, chosen on the test tasks).
    """
    model = nets.mlp(config["widths"], activation="relu", init="he")
    rows, hp = _arms(config["strengths"])
    b, seeds = config["batch_size"], config["seeds"]
    out = {"rows": [f"{a} λ={lam:g}" if a != "fine-tuning" else a for a, lam in rows]}
    headline, notes = {}, []
    for name, d in _scenarios(config).items():
        (t, n), epochs = d["tasks"]["y"].shape, config["epochs_per_task"][name]
        spt = epochs * (n // b)  # steps per task
        task = continual_task(
            model, learning_rate=config["learning_rate"], num_tasks=t, steps_per_task=spt,
            fisher_steps=config["fisher_epochs"] * (n // b),
            fisher_examples=config["fisher_examples"], gamma=config["gamma"],
        )  # fmt: skip
        stream = streams.task_sequence(streams.epochs(b), steps_per_task=spt)
        seq = run.sweep(
            task, d, stream=stream, seeds=seeds, epochs=t * epochs, eval_epochs=epochs, hparams=hp
        )
        union = {k: v.reshape(t * n, *v.shape[2:]) for k, v in d["tasks"].items()}
        joint = run.sweep(  # same epochs, all tasks at once
            task, {"train": union, "test": d["test"]}, stream=streams.epochs(b), seeds=seeds,
            epochs=epochs, eval_epochs=epochs,
        )  # fmt: skip
        for ev, lab in LABELS[name]:
            joint_avg = joint.history[ev][0, :, -1].mean(-1)  # (S,)
            out[lab] = _evaluation(
                lab, seq.history[ev], joint_avg, rows, out["rows"], headline, notes
            )
    final = lambda lab, a: out[lab]["average"][out[lab]["best"][a]["index"]].mean()
    worst = max(final("split class-IL", a) for a in ARMS)
    notes.append(
        f"Class-incremental split MNIST: every arm ends at ≤ {worst:.3f} average accuracy "
        f"({'near' if worst < 0.3 else 'well above'} the ~0.20 of Hsu et al. 2018 and van de "
        "Ven & Tolias 2019)."
    )
    ft = out["split task-IL"]["average"][0].mean()
    helps = [a for a in ARMS[1:] if final("split task-IL", a) > ft]
    notes.append(
        "Task-incremental split MNIST: regularization beats fine-tuning for "
        f"{', '.join(helps) or 'no arm'} (the published claim: EWC and online EWC help)."
    )
    notes.append(
        "Fisher: exact expectation under the model's predictive distribution (10-way "
        f"softmax), over the first {config['fisher_examples']} examples of each minibatch of "
        f"the last {config['fisher_epochs']} epoch(s) of a task; the best strength is chosen "
        "on the test tasks (optimistic for every arm alike)."
    )
    out["headline"], out["notes"] = headline, notes
    return out


def figure(numbers: dict, config: dict):
    """Accuracy matrices (best strength per arm) per evaluation, and accuracy per arm."""
    labs = [lab for evs in LABELS.values() for _, lab in evs]
    fig, axes = plotting.figure(len(labs), len(ARMS) + 1, size=(2.8, 2.6), layout="constrained")
    for r, lab in enumerate(labs):
        e = numbers[lab]
        for c, arm in enumerate(ARMS):
            mat = np.asarray(e["matrix"])[e["best"][arm]["index"]].mean(0)
            ax = axes[r][c]
            ax.imshow(mat, vmin=0, vmax=1, cmap="viridis")
            for (j, k), v in np.ndenumerate(mat):
                ax.text(k, j, f"{v:.2f}", ha="center", va="center", fontsize=6, color="w")
            ax.set_title(f"{lab}\n{e['best'][arm]['row']}", fontsize=8)
            ax.set_xlabel("task evaluated")
            ax.set_ylabel("after training task")
        ax = axes[r][-1]
        avg = [np.asarray(e["average"])[e["best"][a]["index"]] for a in ARMS]
        ax.bar(range(len(ARMS)), [a.mean() for a in avg], yerr=[a.std() for a in avg])
        ax.axhline(np.mean(e["joint_average"]), color="k", ls="--", label="joint")
        ax.set_xticks(range(len(ARMS)), ARMS, rotation=30, fontsize=7)
        ax.set_ylabel("average accuracy after last task")
        ax.legend(fontsize=7)
    return fig
