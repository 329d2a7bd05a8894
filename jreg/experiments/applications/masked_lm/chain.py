"""The data of :mod:`.masked_lm`: sequences of a random sparse Markov chain."""

from __future__ import annotations

import jax
import jax.numpy as jnp

TOKENS, LENGTH = 20, 32


def markov_sequences(key: jax.Array, n: int, successors: int = 3) -> jax.Array:
    """(n, 32) token ids from a random sparse Markov chain over 20 tokens fixed by ``key``.

    Each token moves to one of ``successors`` random tokens with uniform-random weights;
    the first token is uniform. The chain is drawn from ``fold_in(key, 0)``.
    """
    k_next, k_w, k_start, k_walk = jax.random.split(jax.random.fold_in(key, 0), 4)
    nxt = jax.vmap(lambda k: jax.random.permutation(k, TOKENS)[:successors])(
        jax.random.split(k_next, TOKENS)
    )
    logp = jnp.full((TOKENS, TOKENS), -jnp.inf)
    w = jax.random.uniform(k_w, (TOKENS, successors), minval=0.2)
    logp = logp.at[jnp.arange(TOKENS)[:, None], nxt].set(jnp.log(w))
    start = jax.random.randint(jax.random.fold_in(key, 1), (n,), 0, TOKENS)

    def walk(tok, k):
        new = jax.random.categorical(k, logp[tok])
        return new, new

    _, rest = jax.lax.scan(walk, start, jax.random.split(k_walk, LENGTH - 1))
    return jnp.concatenate([start[:, None], rest.T], 1).astype(jnp.int32)
