"""Tabular and deep Q-learning targets as pure functions (one transition, no batch axis).

Conventions follow ``rlax`` (and are tested against it): a transition
``(s_{t-1}, a_{t-1}, r_t, s_t)`` is given by the action values ``q_tm1`` (A,) of the
state acted in, the action ``a_tm1`` (int scalar), the reward ``r_t``, the discount
``discount_t`` (``γ`` for a non-terminal ``s_t``, 0 at the end of an episode) and the
action values ``q_t`` (A,) of the next state. ``vmap`` for batches.

* Q-learning (Watkins 1989; Sutton & Barto, *Reinforcement Learning: An Introduction*,
  2nd ed., 2018, §6.5): target ``r_t + γ max_a q_t[a]``.
* Double Q-learning (van Hasselt 2010, "Double Q-learning", NeurIPS; Sutton & Barto
  §6.7): the action is *selected* with one estimate and *evaluated* with another,
  ``r_t + γ q_t_value[argmax_a q_t_selector[a]]``, which removes the maximization bias
  of ``max_a`` over noisy estimates (``E max ≥ max E``).

Action selection (:func:`argmax_random_tie`, :func:`epsilon_greedy`) breaks ties
uniformly at random, as Sutton & Barto's tabular agents do (a first-index ``argmax``
would bias every all-zero initial table towards action 0); the double-Q selector does
so too when given a ``key``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def q_learning_target(r_t, discount_t, q_t: jax.Array) -> jax.Array:
    """Q-learning target ``r_t + discount_t · max_a q_t[a]`` (Watkins 1989; S&B §6.5).

    Args:
      r_t: reward, float scalar.
      discount_t: ``γ`` for a non-terminal next state, 0 at the end of an episode.
      q_t: (A,) action values of the next state.

    Returns:
      Float scalar, with gradients stopped (a semi-gradient target).
    """
    return jax.lax.stop_gradient(r_t + discount_t * jnp.max(q_t))


def q_learning(q_tm1: jax.Array, a_tm1, r_t, discount_t, q_t: jax.Array) -> jax.Array:
    """Q-learning TD error ``r_t + γ max_a q_t[a] − q_tm1[a_tm1]`` (as ``rlax.q_learning``).

    The tabular update is ``Q(s, a) += α · td_error`` (Sutton & Barto, 2nd ed., §6.5);
    with function approximation ``0.5 · td_error²`` is the loss (target gradients stopped).

    Args:
      q_tm1: (A,) action values of the state acted in.
      a_tm1: action taken, int scalar in [0, A).
      r_t: reward, float scalar.
      discount_t: ``γ``, or 0 when the episode ended.
      q_t: (A',) action values of the next state (A' may differ from A).

    Returns:
      The TD error, float scalar.
    """
    return q_learning_target(r_t, discount_t, q_t) - q_tm1[a_tm1]


def double_q_learning_target(
    r_t, discount_t, q_t_value: jax.Array, q_t_selector: jax.Array, *, key=None
) -> jax.Array:
    """Double Q-learning target ``r_t + γ q_t_value[argmax_a q_t_selector[a]]``.

    van Hasselt (2010); Sutton & Barto (2nd ed.) §6.7. Without ``key`` the selector's
    argmax takes the first maximal index (as ``rlax``); with ``key`` ties are broken
    uniformly at random (:func:`argmax_random_tie`, as Sutton & Barto's tabular code).
    Either way the index does not depend on ``q_t_value``, but which tied entry is read
    changes how targets correlate across updates while tables are still flat.

    Args:
      r_t: reward, float scalar.
      discount_t: ``γ``, or 0 when the episode ended.
      q_t_value: (A,) next-state action values that evaluate the chosen action.
      q_t_selector: (A,) next-state action values that choose it.
      key: optional PRNG key for random tie-breaking.

    Returns:
      Float scalar, with gradients stopped.
    """
    best = jnp.argmax(q_t_selector) if key is None else argmax_random_tie(key, q_t_selector)
    return jax.lax.stop_gradient(r_t + discount_t * q_t_value[best])


def double_q_learning(
    q_tm1: jax.Array,
    a_tm1,
    r_t,
    discount_t,
    q_t_value: jax.Array,
    q_t_selector: jax.Array,
    *,
    key=None,
) -> jax.Array:
    """Double Q-learning TD error (as ``rlax.double_q_learning``).

    ``r_t + γ q_t_value[argmax_a q_t_selector[a]] − q_tm1[a_tm1]``. In tabular double Q
    (van Hasselt 2010; Sutton & Barto §6.7) a fair coin picks which table ``Q1`` is
    updated each step, with ``q_tm1 = Q1(s)``, ``q_t_selector = Q1(s')`` and
    ``q_t_value = Q2(s')``, and the roles swapped otherwise.

    Args:
      q_tm1: (A,) action values of the state acted in (of the table being updated).
      a_tm1: action taken, int scalar in [0, A).
      r_t: reward, float scalar.
      discount_t: ``γ``, or 0 when the episode ended.
      q_t_value: (A',) next-state values from the other estimate.
      q_t_selector: (A',) next-state values of the table being updated.
      key: optional PRNG key: break ties in the selector at random (default: the first
        maximal index, as ``rlax``).

    Returns:
      The TD error, float scalar.
    """
    target = double_q_learning_target(r_t, discount_t, q_t_value, q_t_selector, key=key)
    return target - q_tm1[a_tm1]


def argmax_random_tie(key: jax.Array, q: jax.Array) -> jax.Array:
    """Index of a maximal entry of ``q`` (A,), uniformly at random among ties.

    Draws one integer ``j`` below the number of ties and returns the ``j``-th tied
    index, so the cost is O(A) without A random numbers. Returns an int32 scalar.
    """
    tied = q == jnp.max(q)
    j = jax.random.randint(key, (), 0, jnp.sum(tied, dtype=jnp.int32))
    return jnp.argmax(jnp.cumsum(tied, dtype=jnp.int32) > j).astype(jnp.int32)


def epsilon_greedy(key: jax.Array, q: jax.Array, epsilon) -> jax.Array:
    """ε-greedy action from values ``q`` (A,) (Sutton & Barto, 2nd ed., §2.2).

    With probability ``epsilon`` a uniformly random action (any of the A, the greedy one
    included), otherwise a greedy one with ties broken at random; so each non-greedy
    action has probability ``epsilon / A``.

    Args:
      key: PRNG key.
      q: (A,) action values.
      epsilon: exploration probability in [0, 1].

    Returns:
      The action, int32 scalar in [0, A).
    """
    k_explore, k_random, k_greedy = jax.random.split(key, 3)
    explore = jax.random.uniform(k_explore) < epsilon
    random_action = jax.random.randint(k_random, (), 0, q.shape[0])
    return jnp.where(explore, random_action, argmax_random_tie(k_greedy, q))
