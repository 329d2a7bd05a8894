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
        assert abs(np.mean(chosen == 20) - m) < 0.03
        assert abs(np.mean((chosen != 20) & (chosen != 3)) - r * 19 / 21) < 0.03


@pytest.mark.standard_promotion  # optax adam
def test_masked_lm_quick():
    n = exp.compute(exp.get_config(quick=True) | {"n_test": 128})
    exp.figure(dict(n), exp.get_config(quick=True) | {"n_test": 128}).savefig(
        io.BytesIO(), format="png"
    )
    acc = n["masked_accuracy"]  # (rules, seeds)
    # every rule learns the chain beyond chance (1/20); the probe reads the next token
    assert acc.shape == (4, 2) and np.all(acc > 1.0 / exp.TOKENS)
    assert np.all(n["probe_next_accuracy"] > 2.0 / exp.TOKENS)
    # measured at quick size: the token-identity probe is near 1 for every rule (the
    # residual stream keeps the input embedding), so 100/0/0 does not lose clearly here
    assert np.all(n["probe_token_accuracy"] > 0.9)
