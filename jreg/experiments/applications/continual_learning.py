"""Continual learning on MNIST digits: fine-tuning, anchored L2, EWC, online EWC, joint.

Two scenarios (van de Ven & Tolias 2019, "Three scenarios for continual learning"; Hsu et
al. 2018, "Re-evaluating continual learning scenarios"), on the 5,000 offline MNIST
digits (``data.mnist_digits``):

* **split MNIST**: 5 two-class tasks (0/1, 2/3, ..., 8/9), equal sizes. One 10-way
  softmax head is trained on each task's data in turn (cross-entropy over all 10
  classes); evaluation is *task-incremental* (the logits masked to the task's 2 classes:
  the task identity is given) and *class-incremental* (argmax over all 10 classes).
* **permuted MNIST**: ``num_permutations`` fixed pixel permutations of the same digits
  (the first one the identity), 10 classes each: *domain-incremental*.

Arms, all in ONE vmapped sweep per scenario (an arm is a set of penalty weights, 0 = off):
fine-tuning; anchored L2 ``(λ/2)‖θ − θ*‖²`` to the previous task's solution
(``penalties.anchored_l2``); EWC (Kirkpatrick et al. 2017) ``(λ/2) Σ_k F_k ⊙ (θ − θ*_k)²``
with one anchor and Fisher per earlier task (``penalties.ewc``); online EWC (Schwarz et
al. 2018) ``(λ/2) F̃ ⊙ (θ − θ*)²``, ``F̃ ← γ F̃ + F_k``, anchored at the latest solution. Joint
training on the union of all tasks (same epochs) is the upper bound (a second sweep).

Fisher: the EXACT expectation under the model's predictive distribution,
``F = mean_n Σ_c p(c | x_n) (∇ log p(c | x_n))²`` (every class, not a sampled or the data
label: not the empirical Fisher), from ``penalties.diagonal_fisher`` with the
log-likelihood weighted by ``sqrt(p_c)`` (held constant), averaged over the minibatches
of the last ``fisher_epochs`` epochs of each task (so at parameters near the task's
solution), and consolidated at the task switch (``task_step == 0``, ``task > 0``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jreg import data
from jreg.analysis import metrics
from jreg.core import streams, train
from jreg.experiments import kit, plotting
from jreg.experiments.kit import mean_std
from jreg.nn import nets
from jreg.regularizers import losses, penalties
from jreg.util import checks

DESCRIPTION = (
    "Split MNIST (5 two-class tasks; task- and class-incremental) and permuted MNIST "
    "(domain-incremental): fine-tuning vs anchored L2 vs EWC vs online EWC vs joint."
)

ARMS = ("fine-tuning", "anchored L2", "EWC", "online EWC")
PENALTY = {"anchored L2": "anchor_l2", "EWC": "ewc", "online EWC": "online_ewc"}


def get_config(quick: bool = False) -> dict:
    """Reference setup: MLP 784-100-100-10 ReLU, Adam 1e-3, B=50, a few epochs per task."""
    return {
        "seed": 0,  # data set, task split and permutations
        "seeds": 2 if quick else 3,
        "n_train": 1000 if quick else 2000,  # of the 5,000 offline digits
        "n_test": 200 if quick else 500,
        "num_permutations": 5,
        "widths": (784, 64, 64, 10) if quick else (784, 100, 100, 10),
        "learning_rate": 1e-3,
        "batch_size": 50,
        "epochs_per_task": {"split": 4 if quick else 5, "permuted": 1},
        "fisher_epochs": 1,  # last epochs of a task whose minibatches give the Fisher
        "fisher_examples": 8,  # examples of each of those minibatches used
        "gamma": 1.0,  # online EWC decay (van de Ven & Tolias 2019 use 1)
        "strengths": {  # λ per arm
            "anchor_l2": (0.1,) if quick else (0.01, 0.1, 1.0),
            "ewc": (1e4,) if quick else (1e2, 1e3, 1e4),
            "online_ewc": (1e4,) if quick else (1e2, 1e3, 1e4),
        },
    }


def _scenarios(config) -> dict:
    """Stacked task data per scenario: ``{"tasks": {"x" (T,N,784), "y", "allowed" (T,N,10)},
    "test": {same, (T,Nt,...)}}``; ``allowed`` marks the classes of the example's task."""
    x_tr, y_tr, x_te, y_te = data.mnist_digits(
        config["n_train"], config["n_test"], key=checks.seed_key(config["seed"])
    )
    x_tr, y_tr, x_te, y_te = map(np.asarray, (x_tr, y_tr, x_te, y_te))

    def split(x, y):
        idx = [np.flatnonzero((y // 2) == k) for k in range(5)]
        n = min(map(len, idx))  # equal sizes per task: subsample the larger ones
        xs, ys = np.stack([x[i[:n]] for i in idx]), np.stack([y[i[:n]] for i in idx])
        allowed = np.arange(10)[None, None] // 2 == np.arange(5)[:, None, None]
        return {"x": xs, "y": ys, "allowed": np.broadcast_to(allowed, (5, n, 10))}

    keys = jax.random.split(
        checks.seed_key(config["seed"] + 1, "seed + 1"), config["num_permutations"]
    )
    perms = [np.arange(784)] + [np.asarray(jax.random.permutation(k, 784)) for k in keys[1:]]

    def permuted(x, y):
        t = len(perms)
        return {
            "x": np.stack([x[:, p] for p in perms]),
            "y": np.broadcast_to(y, (t, len(y))),
            "allowed": np.ones((t, len(y), 10), bool),
        }

    return {
        "split": {"tasks": split(x_tr, y_tr), "test": split(x_te, y_te)},
        "permuted": {"tasks": permuted(x_tr, y_tr), "test": permuted(x_te, y_te)},
    }


def _masked(logits, allowed):
    """Logits with the classes outside ``allowed`` pushed to -1e9 (probability exactly 0)."""
    return jnp.where(allowed, logits, -1e9)


def exact_fisher(model, params, x, allowed) -> dict:
    """Diagonal Fisher under the model's (masked) predictive distribution, exactly.

    ``mean_n Σ_c p(c|x_n) (∇_θ log p(c|x_n))²``, the softmax over the classes allowed
    for each example: K calls of :func:`jreg.regularizers.penalties.diagonal_fisher`, one per class
    c, each with the log-likelihood weighted by ``sqrt(p(c|x))`` (held constant).

    Args:
      model: :class:`jreg.nn.nets.Model` without model state.
      params: its parameters.
      x: inputs (N, D).
      allowed: (N, K) bool, the classes of each example's task.

    Returns:
      A pytree like ``params``.
    """
    k = allowed.shape[-1]
    xa = jnp.concatenate([x, allowed.astype(x.dtype)], axis=-1)  # one array per example

    def weighted_ll(p, xai, c):  # sqrt(p_c) log p_c: its squared gradient is p_c (∇ log p_c)²
        xi, ai = xai[:-k], xai[-k:] > 0
        logits = model.apply(p, {}, xi[None], key=None, train=False, hp={})[0][0]
        lp = jax.nn.log_softmax(_masked(logits, ai))[c]
        return jnp.sqrt(jnp.exp(jax.lax.stop_gradient(lp))) * lp

    def one_class(c):
        return penalties.diagonal_fisher(weighted_ll, params, xa, jnp.full(x.shape[0], c))

    fisher = jax.tree.map(lambda f: f.sum(0), jax.vmap(one_class)(jnp.arange(k)))
    # Entries below 1e-20 (from classes of probability ~1e-30) are set to 0: they are
    # negligible, and float32 subnormals in the penalty slow the CPU down many times.
    return jax.tree.map(lambda f: jnp.where(f > 1e-20, f, 0.0), fisher)


def continual_task(
    model, *, learning_rate, num_tasks, steps_per_task, fisher_steps, fisher_examples, gamma
):
    """A :class:`jreg.core.train.Task` training ``model`` with anchored-L2 / EWC / online EWC.

    Hyperparameters ``anchor_l2``, ``ewc``, ``online_ewc`` (λ of each term, 0 = off).
    Batches come from ``streams.task_sequence`` (``x`` (B, D), ``y`` (B,), ``allowed``
    (B, K), ``task``, ``task_step``) or, for joint training, from ``streams.epochs`` over
    the union (no ``task``: nothing is consolidated). State: ``params``, ``opt_state``,
    ``anchors`` / ``fishers`` (T, ...) per earlier task (EWC), ``anchor`` (latest
    solution) and ``online_fisher`` (γ-decayed sum), ``fisher_acc`` (running mean of the
    live task's Fisher over its last ``fisher_steps`` steps). Evaluation: ``accuracy``
    (argmax over all classes) and ``task_accuracy`` (masked to the task's classes), each
    (T,), one entry per task's test set.
    """
    opt = optax.adam(learning_rate)
    zeros = lambda p: jax.tree.map(jnp.zeros_like, p)
    stack = lambda p: jax.tree.map(lambda a: jnp.zeros((num_tasks, *a.shape), a.dtype), p)

    def init(key, hp):
        params, _ = model.init(key, hp)
        return {
            "params": params,
            "opt_state": opt.init(params),
            "anchors": stack(params),
            "fishers": stack(params),
            "anchor": params,
            "online_fisher": zeros(params),
            "fisher_acc": zeros(params),
        }

    def objective(params, state, batch, hp):
        logits = model.apply(params, {}, batch["x"], key=None, train=True, hp=hp)[0]
        obj = losses.cross_entropy(logits, batch["y"])
        if "task" not in batch:  # joint training: no penalty
            return obj
        many = jax.vmap(penalties.ewc, in_axes=(None, 0, 0))
        terms = {
            "anchor_l2": lambda: penalties.anchored_l2(params, state["anchor"]),
            "ewc": lambda: jnp.sum(many(params, state["anchors"], state["fishers"])),
            "online_ewc": lambda: penalties.ewc(params, state["anchor"], state["online_fisher"]),
        }
        for name, term in terms.items():
            obj = obj + 0.5 * hp[name] * term()
        return obj

    def consolidate(state, batch):
        """At the first step of task k > 0: task k-1's anchor and Fisher enter the penalty."""
        switch = (batch["task_step"] == 0) & (batch["task"] > 0)
        prev = batch["task"] - 1
        params, fisher = state["params"], state["fisher_acc"]
        put = lambda stacked, new: jax.tree.map(lambda s, n: s.at[prev].set(n), stacked, new)
        new = {
            "anchors": put(state["anchors"], params),
            "fishers": put(state["fishers"], fisher),
            "anchor": params,
            "online_fisher": jax.tree.map(
                lambda f, n: gamma * f + n, state["online_fisher"], fisher
            ),
            "fisher_acc": zeros(fisher),
        }
        return {
            **state,
            **{
                k: jax.tree.map(lambda a, b: jnp.where(switch, a, b), v, state[k])
                for k, v in new.items()
            },
        }

    def accumulate(state, batch):
        """Running mean of the live task's Fisher over its last ``fisher_steps`` steps."""
        live = batch["task_step"] >= steps_per_task - fisher_steps

        def add(acc):
            m = fisher_examples  # the first m of the (shuffled) batch
            f = exact_fisher(model, state["params"], batch["x"][:m], batch["allowed"][:m])
            return jax.tree.map(lambda a, b: a + b / fisher_steps, acc, f)

        return {**state, "fisher_acc": jax.lax.cond(live, add, lambda a: a, state["fisher_acc"])}

    def step(state, batch, key, hp):
        del key
        if "task" in batch:
            state = consolidate(state, batch)
        obj, grads = jax.value_and_grad(objective)(state["params"], state, batch, hp)
        updates, opt_state = opt.update(grads, state["opt_state"], state["params"])
        state = {**state, "params": optax.apply_updates(state["params"], updates)}
        state = {**state, "opt_state": opt_state}
        if "task" in batch:
            state = accumulate(state, batch)
        return state, {"train_objective": obj}

    def evaluate(state, data, hp):
        test = data["test"]  # (T, Nt, ...)
        logits = jax.vmap(
            lambda x: model.apply(state["params"], {}, x, key=None, train=False, hp=hp)[0]
        )(test["x"])
        masked = _masked(logits, test["allowed"])
        return {
            "accuracy": jax.vmap(metrics.accuracy)(logits, test["y"]),
            "task_accuracy": jax.vmap(metrics.accuracy)(masked, test["y"]),
        }

    hparams = {"anchor_l2": 0.0, "ewc": 0.0, "online_ewc": 0.0}
    bounds = {k: train.NONNEGATIVE for k in hparams}
    return train.Task(init, step, evaluate, hparams, name="continual", bounds=bounds)


def _arms(strengths) -> tuple[list[tuple[str, float]], dict]:
    """Rows of the sweep: fine-tuning, then every arm at every strength (penalty weights)."""
    rows = [("fine-tuning", 0.0)]
    rows += [(arm, float(lam)) for arm in ARMS[1:] for lam in strengths[PENALTY[arm]]]
    hp = {
        name: np.asarray(
            [lam if PENALTY.get(arm) == name else 0.0 for arm, lam in rows], np.float32
        )
        for name in PENALTY.values()
    }
    return rows, hp


def summarize(matrix: np.ndarray) -> dict:
    """Average accuracy and forgetting after the last task from accuracy matrices.

    ``matrix[..., j, i]`` = accuracy on task i after training task j (T x T). Average
    accuracy: ``mean_i R[T-1, i]``; forgetting (Chaudhry et al. 2018): ``mean_{i<T-1}
    max_{j<T-1} R[j, i] − R[T-1, i]``. Returns arrays of shape ``matrix.shape[:-2]``.
    """
    last = matrix[..., -1, :]
    best = np.max(matrix[..., :-1, :-1], axis=-2)
    return {"average": last.mean(-1), "forgetting": (best - last[..., :-1]).mean(-1)}


def compute(config: dict, run: kit.Run = kit.QUIET) -> dict:
    """Per scenario: one sweep of arms x strengths x seeds, one joint sweep; matrices.

    Numbers per scenario and evaluation: accuracy matrices (H, S, T, T) (row j: after
    task j), average accuracy and forgetting (H, S), the joint upper bound (S,), and per
    arm the best strength (by mean final average accuracy, chosen on the test tasks).
    """
    progress = run.progress
    model = nets.mlp(config["widths"], activation="relu", init="he")
    rows, hp = _arms(config["strengths"])
    b = config["batch_size"]
    out = {"rows": [f"{a} λ={lam:g}" if a != "fine-tuning" else a for a, lam in rows]}
    evals = {"split": ("task_accuracy", "accuracy"), "permuted": ("accuracy",)}
    label = {("split", "task_accuracy"): "split task-IL", ("split", "accuracy"): "split class-IL"}
    label[("permuted", "accuracy")] = "permuted domain-IL"
    headline, notes = {}, []
    for name, d in _scenarios(config).items():
        t, n = d["tasks"]["y"].shape
        spe = n // b
        spt = config["epochs_per_task"][name] * spe
        task = continual_task(
            model,
            learning_rate=config["learning_rate"],
            num_tasks=t,
            steps_per_task=spt,
            fisher_steps=config["fisher_epochs"] * spe,
            fisher_examples=config["fisher_examples"],
            gamma=config["gamma"],
        )
        kw = dict(seeds=config["seeds"], num_steps=t * spt, progress=progress)
        seq = train.sweep(
            task,
            d,
            stream=streams.task_sequence(streams.epochs(b), steps_per_task=spt),
            eval_every=spt,
            hparams=hp,
            **kw,
        )
        union = {k: v.reshape(t * n, *v.shape[2:]) for k, v in d["tasks"].items()}
        jsteps = config["epochs_per_task"][name] * (t * n // b)  # same epochs, all tasks
        kw.update(num_steps=jsteps)
        joint = train.sweep(
            task,
            {"train": union, "test": d["test"]},
            stream=streams.epochs(b),
            eval_every=jsteps,
            **kw,
        )
        for ev in evals[name]:
            lab = label[(name, ev)]
            mat = np.asarray(seq.history[ev])  # (H, S, T, T)
            summ = summarize(mat)
            joint_avg = np.asarray(joint.history[ev])[0, :, -1].mean(-1)  # (S,)
            best = {}
            for arm in ARMS:
                idx = [i for i, r in enumerate(rows) if r[0] == arm]
                i = max(idx, key=lambda i: summ["average"][i].mean())
                best[arm] = {"row": out["rows"][i], "index": i}
                headline[f"{lab}, {out['rows'][i]}"] = (
                    f"avg {mean_std(summ['average'][i], '.3f')}, "
                    f"forgetting {mean_std(summ['forgetting'][i], '.3f')}"
                )
            headline[f"{lab}, joint"] = f"avg {mean_std(joint_avg, '.3f')}"
            out[lab] = {"matrix": mat, **summ, "joint_average": joint_avg, "best": best}
            ft = summ["average"][0].mean()
            gains = {a: summ["average"][best[a]["index"]].mean() - ft for a in ARMS[1:]}
            notes.append(
                f"{lab}: fine-tuning averages {ft:.3f} after the last task, joint training "
                f"{joint_avg.mean():.3f}; the best strength of "
                + ", ".join(
                    f"{a} {'gains' if g > 0 else 'changes it by'} {g:+.3f}"
                    for a, g in gains.items()
                )
                + "."
            )
    ci = out["split class-IL"]
    worst = max(ci["average"][ci["best"][a]["index"]].mean() for a in ARMS)
    notes.append(
        f"Class-incremental split MNIST: every arm ends at ≤ {worst:.3f} average accuracy "
        f"({'near' if worst < 0.3 else 'well above'} the ~0.20 of Hsu et al. 2018 and van de "
        "Ven & Tolias 2019)."
    )
    ti = out["split task-IL"]
    helps = [
        a
        for a in ARMS[1:]
        if ti["average"][ti["best"][a]["index"]].mean() > ti["average"][0].mean()
    ]
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
    labs = ("split task-IL", "split class-IL", "permuted domain-IL")
    fig, axes = plotting.figure(len(labs), len(ARMS) + 1, size=(2.8, 2.6), layout="constrained")
    for r, lab in enumerate(labs):
        e = numbers[lab]
        for c, arm in enumerate(ARMS):
            i = e["best"][arm]["index"]
            mat = np.asarray(e["matrix"])[i].mean(0)
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
