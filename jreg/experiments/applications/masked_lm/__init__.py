"""BERT-style masked-token training and the mask / keep / random corruption rule.

Devlin et al. 2019 (BERT, App. C.2) select 15 % of the tokens and replace a selected token
by [MASK] 80 % of the time, keep it 10 % and put a random token 10 %; their ablation
compares 100/0/0, 80/0/20, 80/20/0, 0/20/80 and 0/0/100 (mask / keep / random). Here: the
2-layer pre-LN transformer of :mod:`jreg.nn.transformer` (no causal mask, d = 64, 4 heads,
length 32) on sequences of a random sparse Markov chain over 20 tokens (each token has 3
successors with random probabilities; fixed by ``data_seed``; an offline set of sequences),
trained with :func:`jreg.data.bert_mask` (token 20 is [MASK]; a "random" token is drawn from
all 21 ids) and ``token_cross_entropy`` over the selected positions. Every rule × seed is
one vmapped sweep: the stream selects 15 % of the positions (and marks them), the rule
``(mask_prob, random_prob)`` is a swept hyperparameter applied by the task's ``augment``.
Numbers: masked-token accuracy on held-out sequences (every selected token replaced by
[MASK]), and a closed-form ridge probe on the final hidden states of UNMASKED held-out
sequences predicting the token itself and the next token (fit on half of the sequences,
accuracy on the other half); 95 % confidence intervals over seeds (Student t: mean ±
t₀.₉₇₅,S−1 · s / √S with the sample std s, ddof = 1).

Beside BERT's masking ablation (Devlin et al. 2019, App. C.2, NER feature-based dev F1,
in the config with its source): the ordering of the rules is compared — Spearman's rank
correlation between their F1 and our probe accuracy over the rules we run, and whether
80/10/10 beats 100/0/0 in both.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy import stats

from jreg import data, tasks
from jreg.analysis import linear, metrics
from jreg.core import streams
from jreg.experiments import kit
from jreg.nn import transformer
from jreg.util import checks

from . import chain, compare
from .chain import LENGTH, TOKENS

DESCRIPTION = (
    "Masked-token training of a 2-layer transformer on Markov-chain sequences with BERT's six "
    "mask/keep/random rules: masked accuracy and linear probes on unmasked inputs, ordered "
    "beside BERT's ablation (NER feature-based F1)."
)

MASK_ID = TOKENS
RULES = {
    "80/10/10": (0.8, 0.1),
    "100/0/0": (1.0, 0.0),
    "80/0/20": (0.8, 0.2),
    "80/20/0": (0.8, 0.0),
    "0/20/80": (0.0, 0.8),
    "0/0/100": (0.0, 1.0),
}


def get_config(quick: bool = False) -> dict:
    """Full size: 2,000 / 512 sequences, 5 seeds, 250 steps; quick: 400 / 128, 2 seeds, 20."""
    full = {
        "data_seed": 0, "seeds": 5, "n_train": 2000, "n_test": 512, "rules": tuple(RULES),
        "learning_rate": 3e-3, "batch_size": 32, "num_steps": 250, "eval_every": 50,
        "memory_budget_mib": 512,  # configs per compiled call (train.sweep's memory_budget)
        "published": {
            "source": "Devlin et al. 2019 (BERT), Appendix C.2, masking-procedure "
            "ablation, NER dev F1 with the feature-based approach (fine-tuning F1 nearly "
            "flat across rules)",
            "ner_feature_based_dev_f1": {
                "80/10/10": 94.9, "100/0/0": 94.0, "80/0/20": 94.6, "80/20/0": 94.7,
                "0/20/80": 94.6, "0/0/100": 94.6,
            },
        },
        # The ordering agrees when Spearman's ρ(their F1, our metric) >= this and
        # 80/10/10 > 100/0/0 in both.
        "ordering_metric": "probe_next_accuracy",
        "min_rank_correlation": 0.5,
    }  # fmt: skip
    small = {"seeds": 2, "n_train": 400, "n_test": 128, "num_steps": 20, "eval_every": 20}
    return kit.sized(quick, full, quick_overrides=small)


def _probe_accuracy(hidden: jax.Array, labels: jax.Array) -> jax.Array:
    """Ridge (α = 1) one-vs-rest probe from (n, d) features; accuracy on the second half."""
    half = hidden.shape[0] // 2
    onehot = jax.nn.one_hot(labels[:half], TOKENS)
    fits = jax.vmap(lambda y: linear.ridge(hidden[:half], y, 1.0), in_axes=1)(onehot)
    scores = jax.vmap(lambda f: linear.predict(f, hidden[half:]))(fits).T  # (n - half, K)
    return metrics.accuracy(scores, labels[half:])


def compute(config: dict, run: kit.Run = kit.QUIET) -> dict:
    """One sweep over rule × seed; masked accuracy and probes per rule × seed."""
    key = checks.seed_key(config["data_seed"], "data_seed")
    toks = chain.markov_sequences(key, config["n_train"] + config["n_test"])
    tr, te = toks[: config["n_train"]], toks[config["n_train"] :]
    x_te, _, sel_te = data.bert_mask(
        jax.random.fold_in(key, 2),
        te,
        vocab_size=TOKENS + 1,
        mask_id=MASK_ID,
        mask_prob=1.0,
        random_prob=0.0,
    )
    test = {"x": x_te, "y": te, "mask": sel_te}
    net = transformer.model(vocab_size=TOKENS + 1, num_outputs=TOKENS, length=LENGTH)
    rules = list(config["rules"])
    hp = {
        "mask_prob": np.asarray([RULES[r][0] for r in rules], np.float32),
        "random_prob": np.asarray([RULES[r][1] for r in rules], np.float32),
    }

    def corrupt(key, x, hp):  # the rule is a traced hyperparameter: all rules in one sweep
        tokens, selected = x % (TOKENS + 1), x >= TOKENS + 1
        replaced, _, _ = data.bert_mask(
            key,
            tokens,
            vocab_size=TOKENS + 1,
            mask_id=MASK_ID,
            select=1.0,
            mask_prob=hp["mask_prob"],
            random_prob=hp["random_prob"],
        )
        return jnp.where(selected, replaced, tokens)

    task = tasks.supervised(
        net,
        optimizer=optax.adam(config["learning_rate"]),
        loss="token_cross_entropy",
        hparams={"mask_prob": 0.8, "random_prob": 0.1},
        augment=corrupt,
        splits=("test",),
    )
    bs = config["batch_size"]

    def batch(k, t):  # 15 % selection here; the stream marks a selected id by adding 21
        k_idx, k_sel = jax.random.split(k)
        x = tr[jax.random.randint(k_idx, (bs,), 0, tr.shape[0])]
        sel = jax.random.bernoulli(k_sel, 0.15, x.shape)
        return {"x": x + (TOKENS + 1) * sel, "y": x, "mask": sel}

    res = run.sweep(
        task, {"train": test, "test": test}, stream=streams.generated(batch, name="bert"),
        seeds=config["seeds"], num_steps=config["num_steps"], eval_every=config["eval_every"],
        hparams=hp, memory_budget=config["memory_budget_mib"] * 2**20,
    )  # fmt: skip
    curves = res.history["test_accuracy"]  # (rules, S, T)
    acc = curves[..., -1]
    n_rules, n_seeds = acc.shape
    params = jax.tree.map(lambda p: p.reshape(n_rules * n_seeds, *p.shape[2:]), res.state["params"])

    def probes(p):  # one config at a time (lax.map): token and next-token probe accuracy
        hidden = transformer.apply(p, te)[1]["hidden"][:, :-1]
        feats = hidden.reshape(-1, hidden.shape[-1])  # (n·31, d)
        return tuple(_probe_accuracy(feats, lab.reshape(-1)) for lab in (te[:, :-1], te[:, 1:]))

    probe_self, probe_next = (
        np.asarray(v).reshape(n_rules, n_seeds)
        for v in jax.jit(lambda ps: jax.lax.map(probes, ps))(params)
    )

    # 95 % interval half-width; NaN ("± nan") with one seed rather than a fake "± 0".
    def ci(v):
        if v.shape[-1] < 2:
            return np.full(v.shape[:-1], np.nan)
        s = v.shape[-1]
        return stats.t.ppf(0.975, s - 1) * v.std(-1, ddof=1) / np.sqrt(s)

    numbers = {
        "rules": rules,
        "step": res.history["step"][0, 0],
        "masked_accuracy": acc,
        "masked_accuracy_curves": curves,
        "probe_token_accuracy": probe_self,
        "probe_next_accuracy": probe_next,
        "masked_accuracy_ci95": ci(acc),
        "probe_token_ci95": ci(probe_self),
        "probe_next_ci95": ci(probe_next),
    }
    one = acc.shape[1] < 2  # one seed: no interval, and no claim from intervals
    pm = lambda v: f"{v.mean():.4f}" + ("" if one else f" ± {ci(v):.4f}")  # noqa: E731
    # The headline's ± is the notes' (a 95 % interval over seeds), not a std.
    numbers["headline"] = {
        f"{rule}: masked acc / probe(token) / probe(next)": f"{pm(acc[i])} / "
        f"{pm(probe_self[i])} / {pm(probe_next[i])}"
        for i, rule in enumerate(rules)
    }
    notes = [
        f"{acc.shape[1]} seed{'' if one else 's'}, {config['num_steps']} Adam steps "
        f"({config['learning_rate']:g}) of batch {bs}; 15 % selection; "
        + (
            "one seed, so no interval and no claim of a difference."
            if one
            else "± is a 95 % interval over seeds."
        )
    ]
    for i, rule in enumerate(rules):
        notes.append(
            f"{rule}: masked-token accuracy {pm(acc[i])}; probe on unmasked inputs: token "
            f"{pm(probe_self[i])}, next token {pm(probe_next[i])}."
        )
    if "100/0/0" in rules and not one:
        j = rules.index("100/0/0")
        others = [i for i in range(len(rules)) if i != j]
        for what, v in (("token-identity", probe_self), ("next-token", probe_next)):
            lowest = bool(v[j].mean() < min(v[i].mean() for i in others))
            apart = [i for i in others if v[i].mean() - ci(v[i]) > v[j].mean() + ci(v[j])]
            notes.append(
                f"100/0/0 {'has' if lowest else 'does not have'} the lowest {what} probe "
                f"accuracy on unmasked inputs ({v[j].mean():.4f} vs "
                + ", ".join(f"{v[i].mean():.4f} ({rules[i]})" for i in others)
                + f"); its 95 % interval lies below those of {len(apart)} of {len(others)} "
                f"other rules" + (f" ({', '.join(rules[i] for i in apart)})." if apart else ".")
            )
    order_notes, order_headline, numbers["ordering"] = compare.ordering(numbers, config)
    numbers["notes"] = notes + order_notes
    numbers["headline"].update(order_headline)
    return numbers


def figure(numbers: dict, config: dict):
    """Per rule: masked accuracy and the two probes with 95 % intervals; accuracy curves."""
    rules = numbers["rules"]
    xs = np.arange(len(rules))
    fig, axes = kit.panels(5, ncols=3, size=(4.5, 4))
    for ax, key, ci, lab in (
        (axes[0], "masked_accuracy", "masked_accuracy_ci95", "masked-token accuracy"),
        (axes[1], "probe_token_accuracy", "probe_token_ci95", "probe: token (unmasked input)"),
        (axes[2], "probe_next_accuracy", "probe_next_ci95", "probe: next token (unmasked)"),
    ):
        v = np.asarray(numbers[key])
        ax.errorbar(xs, v.mean(1), yerr=numbers[ci], fmt="o", capsize=5)
        for s in range(v.shape[1]):
            ax.plot(xs, v[:, s], ".", color="gray", alpha=0.5)
        ax.set(xticks=xs, xticklabels=rules, xlabel="rule (mask/keep/random %)", ylabel=lab)
        ax.set_title(lab + " (mean, 95 % CI)")
    step = np.asarray(numbers["step"])
    for i, rule in enumerate(rules):
        axes[3].plot(step, np.asarray(numbers["masked_accuracy_curves"])[i].mean(0), label=rule)
    axes[3].set(xlabel="step", ylabel="masked-token accuracy (mean over seeds)")
    axes[3].legend()
    compare.panel(axes[4], numbers, config)
    fig.tight_layout()
    return fig
