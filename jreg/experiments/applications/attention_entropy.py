"""Attention-entropy collapse at high learning rate, an entropy regularizer, QK-layernorm.

Zhai et al. 2023 ("Stabilizing transformer training by preventing attention entropy
collapse") link unstable training to attention whose entropy collapses as attention logits
grow; QK-layernorm (Dehghani et al. 2023; Wortsman et al. 2023) bounds the logits. Here: a
2-layer pre-LN causal transformer (d = 64, 4 heads, :mod:`jreg.nn.transformer`) on
multi-query associative recall (Arora et al. 2023, "Zoology"): a sequence of 32 tokens is
8 key–value pairs (distinct keys out of 16, values out of 16) followed by the 8 keys in a
random order, each followed by its value; the loss is the next-token cross-entropy at the
8 query keys (predict the value: needs attention back to the pair). Sequences are
generated fresh at every step. Adam without warm-up at increasing learning rates; arms:
baseline, an entropy regularizer ``λ · (−H(attention))`` (penalizes LOW entropy, λ swept),
QK-layernorm and σReparam (Zhai et al. 2023: every block matrix ``W ← γ/σ(W) · W``, one
power-iteration step per training step, :func:`jreg.nn.transformer.sigma_reparam`); every
arm × learning rate × seed in one vmapped sweep. Numbers: mean
attention entropy over training (causal maximum: the mean over query rows of ln(i + 1);
ln 32 for full attention), the largest attention logit, loss spikes and divergence,
final recall accuracy.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jreg import tasks
from jreg.core import streams
from jreg.experiments import kit
from jreg.experiments.kit import mean_std
from jreg.nn import transformer
from jreg.regularizers import activity
from jreg.util import checks

DESCRIPTION = (
    "Associative recall, 2-layer pre-LN transformer, Adam without warm-up at increasing "
    "learning rates: baseline vs attention-entropy regularizer vs QK-layernorm vs σReparam; "
    "attention entropy, largest attention logit, loss spikes, accuracy."
)

NUM_KEYS, NUM_VALUES, PAIRS, LENGTH = 16, 16, 8, 32


def recall_batch(key: jax.Array, n: int) -> dict:
    """n recall sequences: ``{"x": (n, 32), "y": (n, 32) next tokens, "mask": (n, 32)}``.

    Keys are ids 0..15, values 16..31; the mask marks the 8 query-key positions.
    """
    k_keys, k_vals, k_order = jax.random.split(key, 3)
    keys = jax.vmap(lambda k: jax.random.permutation(k, NUM_KEYS)[:PAIRS])(
        jax.random.split(k_keys, n)
    )
    vals = NUM_KEYS + jax.random.randint(k_vals, (n, PAIRS), 0, NUM_VALUES)
    order = jax.vmap(lambda k: jax.random.permutation(k, PAIRS))(jax.random.split(k_order, n))
    qk, qv = jnp.take_along_axis(keys, order, 1), jnp.take_along_axis(vals, order, 1)
    x = jnp.concatenate(
        [jnp.stack([keys, vals], -1).reshape(n, -1), jnp.stack([qk, qv], -1).reshape(n, -1)], 1
    )
    y = jnp.concatenate([x[:, 1:], x[:, :1]], 1)
    mask = jnp.zeros((n, LENGTH), bool).at[:, 2 * PAIRS :: 2].set(True)
    return {"x": x, "y": y, "mask": mask}


def get_config(quick: bool = False) -> dict:
    """Full size: 5 seeds, 3 learning rates, 120 steps of 16; quick: 2 seeds, 2 rates, 40.

    6 arms × 3 rates × 5 seeds = 90 configs: an even count, so the two host devices of
    ``jreg run`` need no padding config.
    """
    full = {
        "data_seed": 0,  # held-out evaluation sequences
        "seeds": 5,
        "learning_rates": (1e-3, 1e-2, 3e-2),
        "entropy_weights": (0.03, 0.1, 0.3),
        "batch_size": 16,
        "num_steps": 120,
        "eval_every": 15,
        "n_test": 256,
        "spike_factor": 1.5,  # an evaluation whose loss exceeds this × the best so far
        # configs per compiled call sized to this many MiB (train.sweep's memory_budget;
        # 0: all 90 in one call)
        "memory_budget_mib": 0,
    }
    small = {"seeds": 2, "learning_rates": (1e-3, 3e-2), "num_steps": 40, "eval_every": 20}
    return kit.sized(quick, full, quick_overrides={**small, "n_test": 64})


def compute(config: dict, run: kit.Run = kit.QUIET) -> dict:
    """One sweep over arm × learning rate × seed; per-arm entropy, logits, spikes, accuracy."""
    test = recall_batch(
        checks.seed_key(config["data_seed"] + 10_000, "data_seed + 10_000"), config["n_test"]
    )
    probe = {k: v[:64] for k, v in test.items()}
    net = transformer.model(vocab_size=LENGTH, num_outputs=LENGTH, length=LENGTH, causal=True)

    def track(state, hp):  # attention entropy and largest logit on held-out sequences
        _, _, aux = net.apply(
            state["params"], state["model_state"], probe["x"], key=None, train=False, hp=hp
        )
        return {
            "attention_entropy": activity.attention_entropy(aux["attention"]),
            "max_logit": aux["max_logit"],
        }

    task = tasks.supervised(
        net,
        optimizer=lambda hp: optax.adam(hp["learning_rate"]),
        loss="token_cross_entropy",
        regularizers={
            "entropy_reg": lambda p, b, aux: -activity.attention_entropy(aux["attention"])
        },
        hparams={"learning_rate": 1e-3, "qk_norm": 0.0, "sigma_reparam": 0.0},
        splits=("test",),
        track=track,
    )
    arms = [("baseline", 0.0, 0.0, 0.0)]  # (name, entropy weight, qk_norm, sigma_reparam)
    arms += [(f"entropy λ={w:g}", w, 0.0, 0.0) for w in config["entropy_weights"]]
    arms += [("QK-layernorm", 0.0, 1.0, 0.0), ("σReparam", 0.0, 0.0, 1.0)]
    lrs = np.asarray(config["learning_rates"], np.float32)
    a_idx, l_idx = np.meshgrid(np.arange(len(arms)), np.arange(len(lrs)), indexing="ij")
    a_idx, l_idx = a_idx.ravel(), l_idx.ravel()
    hp = {
        "learning_rate": lrs[l_idx],
        "entropy_reg": np.asarray([arms[a][1] for a in a_idx], np.float32),
        "qk_norm": np.asarray([arms[a][2] for a in a_idx], np.float32),
        "sigma_reparam": np.asarray([arms[a][3] for a in a_idx], np.float32),
    }
    bs = config["batch_size"]
    history = run.sweep(
        task, {"train": test, "test": test},
        stream=streams.generated(lambda k, t: recall_batch(k, bs), name="recall"),
        seeds=config["seeds"], num_steps=config["num_steps"], eval_every=config["eval_every"],
        hparams=hp, memory_budget=config["memory_budget_mib"] * 2**20 or None,
    ).history  # fmt: skip
    shape = (len(arms), len(lrs), *history["step"].shape[1:])
    h = {k: v.reshape(shape) for k, v in history.items()}  # (A, R, S, T)
    loss = h["test_loss"]
    best_so_far = np.minimum.accumulate(loss, axis=-1)
    spikes = np.sum(loss[..., 1:] > config["spike_factor"] * best_so_far[..., :-1], axis=-1)
    final_acc = h["test_accuracy"][..., -1]
    # worse than a uniform guess over all 32 tokens (one over the 16 values gives ln 16)
    diverged = ~(loss[..., -1] <= np.log(LENGTH))
    mean_ent = h["attention_entropy"].mean(-1)
    max_ent = float(np.mean(np.log(np.arange(1, LENGTH + 1))))
    numbers = {
        "arms": [a[0] for a in arms],
        "learning_rates": lrs,
        "step": h["step"][0, 0, 0],
        "curves": {k: h[k] for k in ("test_loss", "attention_entropy", "max_logit")},
        "mean_attention_entropy": mean_ent,  # (A, R, S)
        "final_attention_entropy": h["attention_entropy"][..., -1],
        "max_attention_logit": h["max_logit"].max(-1),
        "loss_spikes": spikes,
        "diverged": diverged,
        "final_accuracy": final_acc,
        "max_causal_entropy": max_ent,
    }
    top = len(lrs) - 1
    numbers["headline"] = {
        f"{name}, lr={lrs[top]:g}: acc / entropy": f"{mean_std(final_acc[a, top])} / "
        f"{mean_std(mean_ent[a, top])}"
        for a, name in enumerate(numbers["arms"])
    }
    notes = [
        f"{config['num_steps']} Adam steps of batch {bs}, no warm-up, {shape[2]} seeds; "
        f"attention entropy on 64 held-out sequences (causal maximum {max_ent:.3f} nats, "
        f"ln 32 = {np.log(32):.3f}); a spike is an evaluation with test loss > "
        f"{config['spike_factor']}× the best so far; diverged = final loss > ln 32 (worse "
        "than uniform over all tokens) or not finite; recall accuracy by chance is "
        f"1/{NUM_VALUES} = {1 / NUM_VALUES:.4f}."
    ]
    logit = numbers["max_attention_logit"]
    for a, name in enumerate(numbers["arms"]):
        notes.append(
            f"{name}: mean entropy over training "
            + ", ".join(f"{mean_ent[a, r].mean():.3f}" for r in range(len(lrs)))
            + "; largest logit "
            + ", ".join(f"{logit[a, r].mean():.1f}" for r in range(len(lrs)))
            + "; spikes "
            + ", ".join(f"{spikes[a, r].sum()}" for r in range(len(lrs)))
            + "; diverged "
            + ", ".join(f"{diverged[a, r].sum()}/{shape[2]}" for r in range(len(lrs)))
            + "; final accuracy "
            + ", ".join(f"{final_acc[a, r].mean():.3f}" for r in range(len(lrs)))
            + f" (lr = {', '.join(f'{x:g}' for x in lrs)})."
        )
    strong = 1 + int(np.argmax(config["entropy_weights"]))
    qk, sr = numbers["arms"].index("QK-layernorm"), numbers["arms"].index("σReparam")
    drop = mean_ent[0, top].mean() - mean_ent[0, 0].mean()
    ent_up = mean_ent[strong, top].mean() > mean_ent[0, top].mean()
    acc_up = final_acc[strong, top].mean() > final_acc[0, top].mean()
    notes.append(
        f"Baseline mean entropy {'falls' if drop < 0 else 'rises'} by {abs(drop):.3f} nats "
        f"from lr={lrs[0]:g} to lr={lrs[top]:g}; at lr={lrs[top]:g} the largest entropy "
        f"weight {'keeps' if ent_up else 'does not keep'} entropy above "
        f"the baseline ({mean_ent[strong, top].mean():.3f} vs {mean_ent[0, top].mean():.3f}) "
        f"and {'raises' if acc_up else 'does not raise'} final accuracy "
        f"({final_acc[strong, top].mean():.3f} vs {final_acc[0, top].mean():.3f}); "
        + "; ".join(
            f"{numbers['arms'][a]} reaches {final_acc[a, top].mean():.3f} with entropy "
            f"{mean_ent[a, top].mean():.3f} and largest logit {logit[a, top].mean():.1f}"
            for a in (qk, sr)
        )
        + f" (baseline's largest logit {logit[0, top].mean():.1f})."
    )
    unstable = spikes[0, top].sum() + diverged[0, top].sum()
    notes.append(
        f"Instability at lr={lrs[top]:g}: the baseline has {spikes[0, top].sum()} loss spikes "
        f"and {diverged[0, top].sum()}/{shape[2]} diverged runs; "
        + ", ".join(
            f"{numbers['arms'][a]} {spikes[a, top].sum()} / {diverged[a, top].sum()}"
            for a in range(1, len(arms))
        )
        + (
            " (spikes / diverged)."
            if unstable
            else " (spikes / diverged): no spike or divergence in the baseline, so the "
            "'training becomes unstable' half of the claim is not seen at this size."
        )
    )
    numbers["notes"] = notes
    return numbers


def figure(numbers: dict, config: dict):
    """Per arm vs learning rate: mean entropy, largest logit, final accuracy; loss curves."""
    lrs = np.asarray(numbers["learning_rates"])
    fig, axes = kit.panels(4, size=(4.5, 4))
    for ax, key, lab in (
        (axes[0], "mean_attention_entropy", "mean attention entropy (nats)"),
        (axes[1], "max_attention_logit", "largest |attention logit|"),
        (axes[2], "final_accuracy", "final recall accuracy"),
    ):
        for a, name in enumerate(numbers["arms"]):
            kit.seeds_errorbar(ax, lrs, np.asarray(numbers[key])[a], label=name, dots=False)
        ax.set(xscale="log", xlabel="learning rate (Adam, no warm-up)", ylabel=lab)
        ax.set_title(lab + " (mean ± std)")
    axes[0].axhline(numbers["max_causal_entropy"], color="gray", ls=":", label="uniform")
    axes[0].legend(fontsize=8)
    step = np.asarray(numbers["step"])
    loss = np.asarray(numbers["curves"]["test_loss"])
    for a, name in enumerate(numbers["arms"]):
        axes[3].plot(step, np.median(loss[a, -1], 0), label=name)
    axes[3].set(xlabel="step", ylabel="test loss (median over seeds)", yscale="log")
    axes[3].set_title(f"test loss at lr={lrs[-1]:g}")
    axes[3].legend(fontsize=8)
    fig.tight_layout()
    return fig
