"""Maximization bias of Q-learning and its removal by double Q-learning.

Sutton & Barto (*Reinforcement Learning: An Introduction*, 2nd ed., 2018, Example 6.7 /
Figure 6.5): from state A, *right* ends the episode with reward 0 and *left* leads
(reward 0) to state B, where each of N actions ends the episode with a reward drawn from
N(−0.1, 1). Left is worse in expectation (−0.1 < 0), so an ε-greedy agent with ε = 0.1
should pick it 5 % of the time (ε/2). Q-learning's target ``max_b Q(B, b)`` over N noisy
estimates is biased upwards (``E max ≥ max E``), so early on it prefers left; double
Q-learning (van Hasselt 2010) evaluates the argmax of one table with the other. One step is
one episode; ``hp["algorithm"]`` (0: Q, 1: double Q) is swept, seeds vmapped, a sweep per N.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jreg.analysis import rl
from jreg.core import streams, train
from jreg.experiments import kit

DESCRIPTION = (
    "Sutton & Barto Example 6.7: Q-learning's maximization bias makes it pick the "
    "worse 'left' action from A; double Q-learning (van Hasselt 2010) stays near 5 %."
)

ALGORITHMS = ("Q-learning", "Double Q-learning")
LEFT, RIGHT = 0, 1


def get_config(quick: bool = False) -> dict:
    """S&B's setup (ε = 0.1, α = 0.1, γ = 1, 300 episodes), N actions in state B."""
    full = {
        "seeds": 10_000,  # independent runs per (algorithm, N)
        "num_b_actions": (1, 10, 100),
        "num_episodes": 300,
        "epsilon": 0.1,
        "learning_rate": 0.1,  # α
        "gamma": 1.0,
        "reward_mean": -0.1,
        "reward_std": 1.0,
        "late_from": 100,  # first episode (1-based) of the "late" window
        "final_episodes": 50,  # the last episodes, averaged
    }
    return kit.sized(quick, full, quick_overrides={"seeds": 2_000, "num_b_actions": (10,)})


def reward_noise(key: jax.Array, step) -> dict:
    """``{"noise": N(0, 1)}``: B's reward ``reward_mean + reward_std · noise`` (any action)."""
    del step
    return {"noise": jax.random.normal(key)}


def maximization_bias_task(num_b_actions: int) -> train.Task:
    """Tabular Q / double-Q agents on Sutton & Barto's Example 6.7 MDP; a step is an episode.

    State: ``{"q1": {"A": (2,), "B": (N,)}, "q2": same}`` (zeros at the start; Q-learning
    uses ``q1`` only); N = ``num_b_actions`` is static (the table size). Per episode:
    ε-greedy action ``a`` at A on ``q1`` (Q) or ``q1 + q2`` (double Q), update of ``Q(A,
    a)``; after *left*, ε-greedy action at B and the terminal update of ``Q(B, b)`` with
    reward ``reward_mean + reward_std · batch["noise"]``. Double Q flips a fair coin per
    update for which table learns (van Hasselt 2010, Algorithm 1; S&B §6.7). Targets:
    :func:`jreg.analysis.rl.q_learning` / :func:`jreg.analysis.rl.double_q_learning`; all
    ties are broken at random, as in Sutton & Barto's own code for the figure. Step metric
    ``left`` (1.0 if it went left); evaluations ``q_left`` (Q(A, left)) and ``max_q_b``.
    """

    def init(key, hp):
        del key, hp
        table = {"A": jnp.zeros(2), "B": jnp.zeros(num_b_actions)}
        return {"q1": table, "q2": table}

    def update(q1, q2, which, state_, action, td_fn, lr):
        """Add ``lr · td_fn(online, other)`` to ``state_, action`` of q1 (which) or q2."""
        online = {s: jnp.where(which, q1[s], q2[s]) for s in q1}
        other = {s: jnp.where(which, q2[s], q1[s]) for s in q1}
        new = online[state_].at[action].add(lr * td_fn(online, other))
        q1 = {**q1, state_: jnp.where(which, new, q1[state_])}
        q2 = {**q2, state_: jnp.where(which, q2[state_], new)}
        return q1, q2

    def step(state, batch, key, hp):
        k_a, k_b, k_c1, k_c2, k_tie = jax.random.split(key, 5)
        double = jnp.asarray(hp["algorithm"]) > 0.5
        q1, q2 = state["q1"], state["q2"]
        lr = hp["learning_rate"]

        def behaviour(s):
            return q1[s] + jnp.where(double, q2[s], 0.0)

        a = rl.epsilon_greedy(k_a, behaviour("A"), hp["epsilon"])
        left = a == LEFT
        discount = jnp.where(left, hp["gamma"], 0.0)  # right ends the episode

        def td_a(online, other):
            q = rl.q_learning(online["A"], a, 0.0, discount, online["B"])
            dq = rl.double_q_learning(
                online["A"], a, 0.0, discount, other["B"], online["B"], key=k_tie
            )
            return jnp.where(double, dq, q)

        coin1 = ~double | jax.random.bernoulli(k_c1)
        q1, q2 = update(q1, q2, coin1, "A", a, td_a, lr)
        # In B (reached only after left): choose, get the reward, terminal update.
        b = rl.epsilon_greedy(k_b, behaviour("B"), hp["epsilon"])
        reward = hp["reward_mean"] + hp["reward_std"] * batch["noise"]

        def td_b(online, other):
            del other  # terminal: the target is the reward for both algorithms
            return rl.q_learning(online["B"], b, reward, 0.0, online["B"])

        coin2 = ~double | jax.random.bernoulli(k_c2)
        q1, q2 = update(q1, q2, coin2, "B", b, td_b, jnp.where(left, lr, 0.0))  # no-op if right
        return {"q1": q1, "q2": q2}, {"left": left.astype(jnp.float32)}

    def evaluate(state, data, hp):
        del data
        double = jnp.asarray(hp["algorithm"]) > 0.5
        q = jax.tree.map(lambda u, v: jnp.where(double, 0.5 * (u + v), u), state["q1"], state["q2"])
        return {"q_left": q["A"][LEFT], "max_q_b": jnp.max(q["B"])}

    hparams = dict(
        algorithm=0, epsilon=0.1, learning_rate=0.1, gamma=1.0, reward_mean=-0.1, reward_std=1.0
    )
    bounds = {"epsilon": (0.0, 1.0 + 1e-9), "learning_rate": train.NONNEGATIVE}
    bounds |= {"gamma": (0.0, 1.0 + 1e-9), "reward_std": train.NONNEGATIVE}
    name = f"maximization_bias(N={num_b_actions})"
    return train.Task(init, step, evaluate, hparams, name=name, bounds=bounds)


def _peak_trend(peaks, ns) -> str:
    """Q-learning's peak left rate per N, and whether it grows with N (needs two N)."""
    listed = f"{', '.join(f'{p:.1f} %' for p in peaks)} for N = {', '.join(map(str, ns))}"
    grows = np.all(np.diff(np.asarray(peaks)[np.argsort(ns)]) > 0)
    trend = "one N: no trend in N" if len(ns) < 2 else "grows" if grows else "does not grow"
    return f"its peak: {listed} ({trend})"


def compute(config: dict, run: kit.Run = kit.QUIET) -> dict:
    """One sweep per N over (algorithm × seeds); left-action rates per episode.

    Returns, per N (axis 0) and algorithm (axis 1, :data:`ALGORITHMS`), over episodes
    (last axis, T): ``left_pct`` (% of runs going left from A), its standard error
    ``left_se_pct``, and the mean estimates ``q_left`` (Q(A, left)) and ``max_q_b``
    (max_b Q(B, b)) after each episode; plus summaries ``peak_pct`` / ``peak_episode``,
    ``early_pct`` (episodes 1 .. late_from − 1), ``late_pct`` (late_from .. T) and
    ``final_pct`` (the last ``final_episodes``).
    """
    t, s = config["num_episodes"], config["seeds"]
    late = config["late_from"] - 1  # 0-based start of the late window
    hparams = {"algorithm": np.arange(len(ALGORITHMS), dtype=np.float32)}
    for k in ("epsilon", "learning_rate", "gamma", "reward_mean", "reward_std"):
        hparams[k] = float(config[k])
    rows = []
    for n in config["num_b_actions"]:
        res = run.sweep(
            maximization_bias_task(int(n)), {}, stream=streams.generated(reward_noise), seeds=s,
            num_steps=t, eval_every=1, hparams=hparams,  # one history entry per episode
        )  # fmt: skip
        hist = {k: np.asarray(v, np.float64) for k, v in res.history.items()}  # (2, S, T)
        rows.append({k: hist[k].mean(axis=1) for k in ("left", "q_left", "max_q_b")})
    left = 100 * np.stack([r["left"] for r in rows])  # (len(N), 2, T)
    se = np.sqrt(left * (100 - left) / s)
    peak_episode = left.argmax(-1) + 1
    early, late_pct = left[..., :late].mean(-1), left[..., late:].mean(-1)
    final = left[..., -config["final_episodes"] :].mean(-1)
    optimum = 100 * config["epsilon"] / 2
    q_left = np.stack([r["q_left"] for r in rows])
    notes = []
    for i, n in enumerate(config["num_b_actions"]):
        notes.append(
            f"N = {n}: Q-learning goes left in {left[i, 0].max():.1f} % of runs at its peak "
            f"(episode {peak_episode[i, 0]}) and {late_pct[i, 0]:.1f} % on average over "
            f"episodes {late + 1}–{t}; double Q-learning peaks at {left[i, 1].max():.1f} % "
            f"(episode {peak_episode[i, 1]}) and averages {late_pct[i, 1]:.1f} % there; over "
            f"the last {config['final_episodes']} episodes Q-learning averages {final[i, 0]:.1f} "
            f"% and double Q-learning {final[i, 1]:.1f} % (optimum {optimum:.0f} %)."
        )
        notes.append(
            f"N = {n}: after episode {t} the mean estimate of Q(A, left) is "
            f"{q_left[i, 0, -1]:+.3f} for Q-learning and {q_left[i, 1, -1]:+.3f} for double "
            f"Q-learning (true value {config['reward_mean']:+.3f})."
        )
    if 1 in config["num_b_actions"]:  # one action in B: nothing to maximize over
        i = list(config["num_b_actions"]).index(1)
        better = late_pct[i, 1] < late_pct[i, 0]
        notes.append(
            f"With N = 1 there is no maximization bias, and double Q-learning (each table "
            f"updated half as often) is {'closer to' if better else 'no closer to'} the "
            f"optimum than Q-learning over episodes {late + 1}–{t} ({late_pct[i, 1]:.2f} % "
            f"vs {late_pct[i, 0]:.2f} %)."
        )
    gap = np.abs(late_pct[:, 1] - optimum)
    notes.append(
        f"Double Q-learning's late left rate is within {gap.max():.2f} percentage points of "
        f"the optimum for every N; Q-learning's is {np.abs(late_pct[:, 0] - optimum).max():.2f} "
        f"points away at worst; {_peak_trend(left[:, 0].max(-1), config['num_b_actions'])}; "
        f"the standard error of one "
        f"episode's rate is at most {se.max():.2f} points ({s} runs)."
    )
    headline, window = {}, f"episodes {late + 1}–{t}"
    for i, n in enumerate(config["num_b_actions"]):
        peak = f"{left[i, 0].max():.1f} ({peak_episode[i, 0]})"
        headline[f"N={n}: Q-learning peak left % (episode)"] = peak
        headline[f"N={n}: Q-learning left %, {window}"] = float(late_pct[i, 0])
        headline[f"N={n}: double Q left %, {window}"] = float(late_pct[i, 1])
    return dict(
        episode=np.arange(1, t + 1), num_b_actions=np.asarray(config["num_b_actions"]),
        algorithms=list(ALGORITHMS), optimum_pct=optimum, left_pct=left, left_se_pct=se,
        q_left=q_left, max_q_b=np.stack([r["max_q_b"] for r in rows]), peak_pct=left.max(-1),
        peak_episode=peak_episode, early_pct=early, late_pct=late_pct, final_pct=final,
        headline=headline, notes=notes,
    )  # fmt: skip


def figure(numbers: dict, config: dict):
    """% left from A per episode, Q vs double Q, one panel per N; Q(A, left) estimates."""
    ep = np.asarray(numbers["episode"])
    left, se = np.asarray(numbers["left_pct"]), np.asarray(numbers["left_se_pct"])
    ns = np.asarray(numbers["num_b_actions"])
    fig, axes = kit.panels(len(ns) + 1, size=(4.2, 3.4))
    colors = ("tab:red", "tab:blue")
    for i, n in enumerate(ns):
        ax = axes[i]
        for j, name in enumerate(numbers["algorithms"]):
            ax.plot(ep, left[i, j], color=colors[j], lw=1.0, label=name)
            lo, hi = left[i, j] - se[i, j], left[i, j] + se[i, j]
            ax.fill_between(ep, lo, hi, color=colors[j], alpha=0.25, lw=0)
        ax.axhline(numbers["optimum_pct"], color="k", ls="--", lw=0.8, label="optimal (ε/2)")
        ax.set(ylim=(0, 100), xlabel="episode", ylabel="% left actions from A")
        ax.set_title(f"N = {n} actions in B", fontsize=10)
        ax.legend(fontsize=8)
    ax = axes[-1]
    q_left = np.asarray(numbers["q_left"])
    for i, n in enumerate(ns):
        for j, name in enumerate(numbers["algorithms"]):
            style = "-" if j == 0 else ":"
            ax.plot(ep, q_left[i, j], style, color=f"C{i}", lw=1.0, label=f"{name}, N = {n}")
    ax.axhline(config["reward_mean"], color="k", ls="--", lw=0.8, label="true Q(A, left)")
    ax.set(xlabel="episode", ylabel="mean estimate of Q(A, left)")
    ax.set_title("Maximization bias in the estimates", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.suptitle(
        f"Maximization bias (Sutton & Barto Ex. 6.7): ε = {config['epsilon']}, "
        f"α = {config['learning_rate']}, mean ± s.e. over {config['seeds']:,} runs",
        fontsize=10,
    )
    fig.tight_layout()
    return fig
