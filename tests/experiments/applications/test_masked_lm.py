"""masked_lm at quick size: the rules train, and bert_mask applies the rule it is given."""

import io

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jreg import data
from jreg.experiments.applications import masked_lm as exp


def test_bert_mask_rule_fractions():
    toks = jnp.zeros((200, 100), jnp.int32) + 3
    for m, r in exp.RULES.values():
        inp, _, sel = data.bert_mask(
            jax.random.key(0), toks, vocab_size=21, mask_id=20, mask_prob=m, random_prob=r
        )
        chosen = np.asarray(inp)[np.asarray(sel)]
        # a "random" token is drawn from all 21 ids, [MASK] included
        assert abs(np.mean(chosen == 20) - (m + r / 21)) < 0.03
        assert abs(np.mean((chosen != 20) & (chosen != 3)) - r * 19 / 21) < 0.03


@pytest.mark.standard_promotion  # optax adam
def test_masked_lm_quick():
    n = exp.compute(exp.get_config(quick=True) | {"n_test": 128})
    exp.figure(dict(n), exp.get_config(quick=True) | {"n_test": 128}).savefig(
        io.BytesIO(), format="png"
    )
    acc = n["masked_accuracy"]  # (rules, seeds)
    # every rule that shows [MASK] in training learns the chain beyond chance (1/20) at
    # the [MASK]ed test positions; the probe reads the next token
    assert acc.shape == (6, 2)
    shows_mask = np.asarray([exp.RULES[r][0] > 0 for r in n["rules"]])
    assert np.all(acc[shows_mask] > 1.0 / exp.TOKENS)
    assert np.all(n["probe_next_accuracy"] > 2.0 / exp.TOKENS)
    # measured at quick size: the token-identity probe is near 1 for every rule (the
    # residual stream keeps the input embedding), so 100/0/0 does not lose clearly here
    assert np.all(n["probe_token_accuracy"] > 0.9)
    # the 95 % interval is Student t with the sample std (ddof = 1)
    v = n["probe_next_accuracy"][0]
    assert np.isclose(n["probe_next_ci95"][0], 12.706 * np.std(v, ddof=1) / np.sqrt(2), rtol=1e-3)
    # the headline's ± is that interval too (as in the notes), not the std
    rule = n["rules"][0]
    head = n["headline"][f"{rule}: masked acc / probe(token) / probe(next)"]
    assert head.split(" / ")[2] == f"{v.mean():.4f} ± {n['probe_next_ci95'][0]:.4f}"
    o = n["ordering"]
    assert o["rules"] == n["rules"] and set(o) >= {"probe_next_accuracy", "published_f1"}


def test_ordering_against_published():
    """The comparison is computed: ours ordered as BERT's F1 agrees, reversed disagrees."""
    cfg = exp.get_config(quick=True)
    pub = cfg["published"]["ner_feature_based_dev_f1"]
    rules = list(pub)
    f1 = np.asarray([pub[r] for r in rules])
    for sign, rho, verdict in ((1, 1.0, "agrees"), (-1, -1.0, "disagrees")):
        ours = np.repeat((sign * f1)[:, None], 2, 1)
        num = {"rules": rules, "probe_next_accuracy": ours, "probe_token_accuracy": ours,
               "masked_accuracy": ours}  # fmt: skip
        _, headline, o = exp.compare.ordering(num, cfg)
        assert np.isclose(o["probe_next_accuracy"]["spearman"], rho)
        assert o["probe_next_accuracy"]["verdict"] == verdict
        assert o["probe_next_accuracy"]["80/10/10 > 100/0/0"] == (sign > 0)
