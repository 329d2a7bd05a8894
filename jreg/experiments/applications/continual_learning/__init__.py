"""Continual learning, split MNIST, three scenarios: fine-tuning, L2, EWC, online EWC, SI, joint.

The setting of Hsu et al. 2018 ("Re-evaluating continual learning scenarios") and van de
Ven & Tolias 2019 ("Three scenarios for continual learning") on the 5,000 offline MNIST
digits (``data.mnist_digits``): **split MNIST**, 5 two-class tasks (0/1, ..., 8/9) learnt
in turn by an MLP 784-400-400-10 (Adam 1e-3, batch 128), in three scenarios that differ in
what the network is trained and tested to output: *task-IL* (the task identity is given: a
head per task, as logits masked to the task's 2 classes, in training and test),
*domain-IL* (one shared 2-way head: is the digit the task's first or second class?) and
*class-IL* (one 10-way head, no task identity).

Arms, in one vmapped sweep per scenario (arm x strength x seed): fine-tuning (no penalty);
L2 anchored at the previous task's solution; EWC (Kirkpatrick et al. 2017) with an exact
Fisher per task; online EWC (Schwarz et al. 2018); SI (Zenke et al. 2017); and joint
(offline) training on all tasks at once as the upper bound. Each penalty's strength is
chosen on a validation split held out of each task's training digits (never the test
set); ours sit beside Hsu et al.'s Table 2 with a verdict at a stated tolerance, and
the published pattern (task-IL high for every arm, class-IL ≈ the last task only for
every penalty, joint high) is checked from the numbers (:mod:`.report`).
"""

from __future__ import annotations

import numpy as np

from jreg import data
from jreg.core import runtime, streams
from jreg.experiments import kit
from jreg.nn import nets
from jreg.util import checks

from . import report
from .ewc import PENALTY, SCENARIOS, continual_task

DESCRIPTION = (
    "Split MNIST in the three scenarios (task-, domain-, class-incremental): fine-tuning, "
    "L2, EWC, online EWC, SI and joint training, against Hsu et al. 2018 (Table 2)."
)

ARMS = ("fine-tuning", *PENALTY)
figure = report.figure


def get_config(quick: bool = False) -> dict:
    """Hsu et al.'s protocol (MLP 2 x 400, Adam 1e-3, batch 128) on 4,000 offline digits."""
    full = {
        "seed": 0,  # data set and its split into tasks / validation
        "seeds": 2,
        "n_train": 4000,  # of the 5,000 offline digits: 800 per task, incl. validation
        "n_val": 100,  # per task, held out of its training digits to choose strengths
        "n_test": 1000,  # 200 per task
        "classes_per_task": 2,
        "widths": (784, 400, 400, 10),
        "learning_rate": 1e-3,
        "batch_size": 128,
        "epochs_per_task": 10,  # 5 steps each; at 8 fine-tuning hit 0.9499 on task 5
        "fisher_epochs": 2,  # last epochs of a task whose minibatches give the Fisher
        "fisher_examples": 32,  # examples of each of those minibatches used
        "gamma": 1.0,  # online EWC decay (van de Ven & Tolias 2019 use 1)
        "xi": 0.1,  # SI damping (Zenke et al. 2017; van de Ven & Tolias 2019)
        "strengths": dict(  # λ per arm, for the term (λ/2) Σ w (θ − θ*)²
            l2=(0.1, 1.0),  # two each (the ones validation chose from three) for time
            ewc=(1e3, 1e4),
            online_ewc=(1e3, 1e4),
            si=(10.0, 100.0),
        ),  # fmt: skip
        "memory_budget": None,  # bytes, or None: a sweep of 9 configs fits in one chunk
        "tolerance": 0.05,  # |ours − published| (fraction) for an "agrees"
        "high": 0.85,  # "high" accuracy in the pattern checks (lowest published: 0.8719)
        "pattern_tolerance": 0.05,  # "≈" in the pattern checks
        "published": report.PUBLISHED,
    }
    quick_overrides = dict(
        seeds=1, n_train=2000, n_val=50, n_test=500, widths=(784, 100, 100, 10), batch_size=64,
        epochs_per_task=6, memory_budget=None,
        strengths=dict(l2=(1.0,), ewc=(1e4,), online_ewc=(1e4,), si=(10.0,)),
    )  # fmt: skip
    return kit.sized(quick, full, quick_overrides=quick_overrides)


def split_mnist(config) -> dict:
    """``{"tasks", "val", "test"}``, each ``{"x" (T, N, 784), "y" (T, N) digits}``: task k
    holds the digits ``per_task * k, ...`` (equal sizes: larger tasks are subsampled)."""
    sizes, key = (config["n_train"], config["n_test"]), checks.seed_key(config["seed"])
    x_tr, y_tr, x_te, y_te = map(np.asarray, data.mnist_digits(*sizes, key=key))
    per, nv = config["classes_per_task"], config["n_val"]
    num_tasks = 10 // per

    def split(x, y):
        idx = [np.flatnonzero(y // per == k) for k in range(num_tasks)]
        n = min(map(len, idx))
        return np.stack([x[i[:n]] for i in idx]), np.stack([y[i[:n]] for i in idx])

    (x, y), (xt, yt) = split(x_tr, y_tr), split(x_te, y_te)
    return {
        "tasks": {"x": x[:, nv:], "y": y[:, nv:]},
        "val": {"x": x[:, :nv], "y": y[:, :nv]},
        "test": {"x": xt, "y": yt},
    }


def _rows(strengths, sc: str) -> tuple[list[tuple[str, str, float]], dict]:
    """Rows of scenario ``sc``'s sweep, (sc, arm, λ), and their hyperparameters."""
    arms = [("fine-tuning", 0.0)]
    arms += [(arm, float(lam)) for arm in ARMS[1:] for lam in strengths[PENALTY[arm]]]
    rows = [(sc, arm, lam) for arm, lam in arms]
    hp = {"scenario": np.full(len(rows), SCENARIOS.index(sc), np.float32)}
    for arm, name in PENALTY.items():
        hp[name] = np.asarray([lam if a == arm else 0.0 for _, a, lam in rows], np.float32)
    return rows, hp


def compute(config: dict, run: kit.Run = kit.QUIET) -> dict:
    """A sequential sweep (arm x strength) per scenario and seed, and one joint sweep.

    One sweep per scenario and seed, not one for all: a sweep keeps every config's final
    state (parameters, Adam moments, anchors, importances: ~12 copies of the parameters)
    until it returns, so smaller sweeps bound the peak memory (they share one compile).

    Numbers per scenario: accuracy matrices on the test tasks ``(rows, S, T, T)`` (row j:
    after task j; column i: task i), average accuracy and forgetting after the last task,
    the validation average that chose each arm's strength, joint training's average,
    ours vs published with verdicts, and the pattern checks (:func:`report.summarize`).
    """
    d = split_mnist(config)
    (t, n), b, e = d["tasks"]["y"].shape, config["batch_size"], config["epochs_per_task"]
    model = nets.mlp(config["widths"], activation="relu", init="he")
    spt = e * (n // b)  # steps per task
    task = continual_task(
        model, activation="relu", learning_rate=config["learning_rate"], steps_per_task=spt,
        fisher_steps=config["fisher_epochs"] * (n // b), num_classes=config["widths"][-1],
        fisher_examples=config["fisher_examples"], gamma=config["gamma"], xi=config["xi"],
        per_task=config["classes_per_task"],
    )  # fmt: skip
    rows, hists = [], []
    for sc in SCENARIOS:  # only the histories are kept: each sweep's states are freed
        sc_rows, hp = _rows(config["strengths"], sc)
        per_seed = [run.sweep(
            task, d, stream=streams.task_sequence(streams.epochs(b), steps_per_task=spt),
            seeds=[seed], epochs=t * e, eval_epochs=e, hparams=hp,
            memory_budget=config["memory_budget"],
        ).history for seed in range(config["seeds"])]  # fmt: skip
        hists.append({k: np.concatenate([h[k] for h in per_seed], 1) for k in per_seed[0]})
        runtime.trim_memory()  # finished sweeps' states: ~0.5 GB at full size
        rows += sc_rows
    seq = {k: np.concatenate([h[k] for h in hists]) for k in hists[0]}
    union = {k: v.reshape(t * n, *v.shape[2:]) for k, v in d["tasks"].items()}
    joint = run.sweep(  # the same epochs over all tasks at once
        task, {"train": union, "val": d["val"], "test": d["test"]}, stream=streams.epochs(b),
        seeds=config["seeds"], epochs=e, eval_epochs=e,
        hparams={"scenario": np.arange(len(SCENARIOS), dtype=np.float32)},
    )  # fmt: skip
    return report.summarize(config, rows, seq, joint.history, ARMS)
