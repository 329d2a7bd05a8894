import io

from jreg import experiments
from jreg.experiments.applications import double_q


def test_double_q_quick_claim():
    cfg = double_q.get_config(quick=True)
    num = double_q.compute(cfg)
    double_q.figure(dict(num), cfg).savefig(io.BytesIO(), format="png")
    left = num["left_pct"]  # (len(N), 2 algorithms, episodes), in %
    assert left.shape == (len(cfg["num_b_actions"]), 2, cfg["num_episodes"])
    q, dq = left[0, 0], left[0, 1]
    # Same seeds: both algorithms start from all-zero tables, so episode 1 is identical.
    assert q[0] == dq[0]
    # Maximization bias: Q-learning goes left far more than 5 % early on ...
    assert q[:50].max() > 60.0 and q[10:50].mean() > 2 * dq[10:50].mean()
    assert num["late_pct"][0, 0] > 10.0
    # ... double Q-learning is near the 5 % optimum late, Q-learning well above it.
    assert abs(num["late_pct"][0, 1] - num["optimum_pct"]) < 4.0
    assert abs(dq[200:].mean() - 5.0) < 3.0  # about 7 % (S&B's own code gives the same)
    assert num["late_pct"][0, 0] > num["late_pct"][0, 1] + 5.0
    # Q-learning overestimates Q(A, left) (true value -0.1) more than double Q.
    assert num["q_left"][0, 0, -1] > num["q_left"][0, 1, -1]
    assert len(num["notes"]) == 3 and num["headline"]  # two per N, one summary


def test_double_q_is_registered_for_all_only():
    assert "double_q" in experiments.NAMES
    assert "double_q" not in experiments.CLASSIC
