"""Model pieces as pure functions: MLPs, dropout, drop-path, (ghost) batch norm.

The MLP path is plain ``init``/``apply`` functions on a list of ``{"w", "b"}`` dicts so
that it can be ``vmap``-ed over seeds and hyperparameters without any module state.
Bigger models (CNN, transformer, ...) may use flax; this file keeps to jax.numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jreg.util import checks

Params = list[dict[str, jax.Array]]

ACTIVATIONS = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "gelu": jax.nn.gelu,
    "identity": lambda x: x,
}


def activation_fn(name: str):
    """Look up an activation by name (``tanh``, ``relu``, ``gelu``, ``identity``)."""
    checks.check_choice("activation", name, ACTIVATIONS)
    return ACTIVATIONS[name]


def mlp_init(
    key: jax.Array,
    widths: Sequence[int],
    *,
    init: str = "lecun",
    dtype=jnp.float32,
) -> Params:
    """Initialise an MLP ``widths[0] -> widths[1] -> ... -> widths[-1]``.

    Args:
      key: PRNG key.
      widths: layer sizes including input and output, e.g. ``(784, 128, 10)``.
      init: ``"lecun"`` (w ~ N(0, 1/fan_in), LeCun et al. 1998), ``"he"``
        (N(0, 2/fan_in), He et al. 2015) or ``"glorot"`` (N(0, 2/(fan_in+fan_out)),
        Glorot & Bengio 2010). Biases start at zero.
      dtype: parameter dtype.

    Returns:
      A list of ``{"w": (fan_in, fan_out), "b": (fan_out,)}`` dicts, one per layer.
    """
    widths = tuple(int(w) for w in widths)
    if len(widths) < 2 or min(widths) < 1:
        raise ValueError(f"widths must hold >= 2 positive sizes, got {widths}.")
    gains = {
        "lecun": lambda i, o: 1.0 / i,
        "he": lambda i, o: 2.0 / i,
        "glorot": lambda i, o: 2.0 / (i + o),
    }
    checks.check_choice("init", init, gains)
    keys = jax.random.split(key, len(widths) - 1)
    params = []
    for k, fan_in, fan_out in zip(keys, widths[:-1], widths[1:], strict=True):
        std = gains[init](fan_in, fan_out) ** 0.5
        w = std * jax.random.normal(k, (fan_in, fan_out), dtype)
        params.append({"w": w, "b": jnp.zeros((fan_out,), dtype)})
    return params


def _keep_or_drop(x: jax.Array, rate, key, train: bool, name: str, draw) -> jax.Array:
    """Inverted dropout of ``x`` with the keep mask ``draw(key, keep)`` (identity if not train)."""
    checks.check_unit_interval(f"{name} rate", rate)
    if not train:
        return x
    if key is None:
        raise ValueError(f"{name} with train=True needs a PRNG `key`.")
    keep = 1.0 - jnp.asarray(rate, x.dtype)
    return jnp.where(draw(key, keep), x / keep, jnp.zeros((), x.dtype))


def dropout(
    x: jax.Array,
    rate,
    *,
    key: jax.Array | None,
    train: bool,
    shared_mask: bool | jax.Array = False,
) -> jax.Array:
    """Inverted dropout (Srivastava et al. 2014): zero each unit w.p. ``rate``, scale by 1/(1-rate).

    Args:
      x: activations, any shape.
      rate: drop probability in [0, 1); may be a traced scalar (a swept hyperparameter).
      key: PRNG key; required when ``train`` is True.
      train: when False the function is the identity (deterministic inference). Pass
        ``train=True`` with a key at inference to sample one member of the implicit
        ensemble (Monte-Carlo dropout, Gal & Ghahramani 2016).
      shared_mask: draw one mask of shape ``x.shape[-1:]`` and share it by every row of
        ``x`` (one thinned network per call, as the blog's numpy dropout does per forward
        pass) instead of one mask per entry. For ``x`` of shape ``(F,)`` both are the same.
        A Python bool chooses statically; an array (e.g. a swept 0/1 hyperparameter)
        draws both masks from ``key`` and selects, so the two kinds share one program.

    Returns:
      Array of the same shape as ``x``; its expectation over the key equals ``x``.
    """

    def draw(key, keep):
        if isinstance(shared_mask, bool):
            return jax.random.bernoulli(key, keep, x.shape[-1:] if shared_mask else x.shape)
        one = jax.random.bernoulli(key, keep, x.shape[-1:])
        return jnp.where(
            jnp.asarray(shared_mask) > 0, one, jax.random.bernoulli(key, keep, x.shape)
        )

    return _keep_or_drop(x, rate, key, train, "dropout", draw)


def drop_path(x: jax.Array, rate, *, key: jax.Array | None, train: bool) -> jax.Array:
    """Stochastic depth (Huang et al. 2016): drop a residual branch per example.

    Args:
      x: branch output of shape ``(B, ...)``; one Bernoulli draw per example.
      rate: drop probability in [0, 1).
      key: PRNG key; required when ``train`` is True.
      train: identity when False.

    Returns:
      ``x`` with whole examples zeroed w.p. ``rate`` and survivors scaled by 1/(1-rate).
    """
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    draw = lambda key, keep: jax.random.bernoulli(key, keep, shape)
    return _keep_or_drop(x, rate, key, train, "drop_path", draw)


def mlp_apply(
    params: Params,
    x: jax.Array,
    *,
    activation: str = "tanh",
    dropout_rate=0.0,
    key: jax.Array | None = None,
    train: bool = False,
    unit_masks: Sequence[jax.Array] | None = None,
    shared_mask: bool | jax.Array = False,
) -> jax.Array:
    """Forward pass of an MLP; dropout after every hidden activation.

    Args:
      params: output of :func:`mlp_init`.
      x: inputs of shape ``(..., widths[0])``.
      activation: hidden non-linearity name.
      dropout_rate: dropout probability on hidden units, in [0, 1) (may be traced).
      key: PRNG key for dropout; needed when ``train`` and ``dropout_rate`` may be > 0.
      train: dropout is active only when True (use True + key at inference for MC dropout).
      unit_masks: optional 0/1 vectors, one per hidden layer, of shape ``(width_l,)``;
        masked units are zeroed after the activation so a wide padded network computes
        exactly the narrower one (used to vmap over different widths).
      shared_mask: one dropout mask per layer shared by every example of ``x`` (one
        thinned network per call; see :func:`dropout`) instead of one per example.

    Returns:
      Logits of shape ``(..., widths[-1])``.
    """
    act = activation_fn(activation)
    checks.check_unit_interval("dropout_rate", dropout_rate)
    if x.shape[-1] != params[0]["w"].shape[0]:
        raise ValueError(
            f"input has {x.shape[-1]} features but the first layer expects "
            f"{params[0]['w'].shape[0]}."
        )
    # A concrete rate of 0 skips dropout entirely (no key needed, no RNG work when compiled).
    no_dropout = checks.is_static_zero(dropout_rate)
    if train and key is None and not no_dropout:
        raise ValueError("mlp_apply with train=True and dropout needs a PRNG `key`.")
    n_hidden = len(params) - 1
    if unit_masks is not None and len(unit_masks) != n_hidden:
        raise ValueError(f"unit_masks needs {n_hidden} masks (one per hidden layer).")
    use_dropout = train and key is not None and not no_dropout
    keys = jax.random.split(key, max(n_hidden, 1)) if use_dropout else None
    h = x
    for i, layer in enumerate(params[:-1]):
        h = act(h @ layer["w"] + layer["b"])
        if unit_masks is not None:
            h = h * unit_masks[i].astype(h.dtype)
        if keys is not None:
            h = dropout(h, dropout_rate, key=keys[i], train=True, shared_mask=shared_mask)
    return h @ params[-1]["w"] + params[-1]["b"]


def mc_dropout_predict(
    params: Params,
    x: jax.Array,
    *,
    key: jax.Array,
    num_samples: int,
    dropout_rate,
    activation: str = "tanh",
) -> tuple[jax.Array, jax.Array]:
    """Monte-Carlo dropout: keep dropout on at inference and average the softmax.

    Args:
      params: MLP parameters.
      x: inputs ``(N, d)``.
      key: PRNG key, split into ``num_samples`` dropout masks.
      num_samples: ensemble size S.
      dropout_rate: rate used in every pass.
      activation: hidden non-linearity.

    Each pass draws an independent Bernoulli mask per example and hidden unit (as in
    training), so one pass is not one fixed sub-network across the batch.

    Returns:
      ``(probs, mean_probs)`` of shapes ``(S, N, K)`` and ``(N, K)``
      (Gal & Ghahramani 2016).
    """
    checks.check_positive_int("num_samples", num_samples)
    keys = jax.random.split(key, num_samples)

    def one(k):
        logits = mlp_apply(
            params, x, activation=activation, dropout_rate=dropout_rate, key=k, train=True
        )
        return jax.nn.softmax(logits, axis=-1)

    probs = jax.vmap(one)(keys)
    return probs, probs.mean(axis=0)


class BatchNormState(NamedTuple):
    """Running statistics of a batch-norm layer, each of shape ``(features,)``."""

    mean: jax.Array
    var: jax.Array


def batch_norm_init(num_features: int, dtype=jnp.float32) -> tuple[dict, BatchNormState]:
    """Parameters ``{"scale": ones, "bias": zeros}`` and running stats (mean 0, var 1)."""
    checks.check_positive_int("num_features", num_features)
    ones, zeros = jnp.ones((num_features,), dtype), jnp.zeros((num_features,), dtype)
    return {"scale": ones, "bias": zeros}, BatchNormState(zeros, ones)


def ghost_batch_norm(
    x: jax.Array,
    *,
    ghost_size: int,
    params: dict | None = None,
    state: BatchNormState | None = None,
    train: bool = True,
    momentum: float = 0.99,
    eps: float = 1e-5,
) -> tuple[jax.Array, BatchNormState]:
    """Ghost batch norm (Hoffer et al. 2017): normalise each chunk of ``ghost_size`` examples.

    In training mode the batch ``(B, F)`` is split into ``B / ghost_size`` ghost batches,
    each normalised with its own mean and (biased) variance; the running statistics
    move towards the average of the ghost statistics with the flax convention
    ``ra = momentum * ra + (1 - momentum) * batch_stat`` (variance averaged unbiased-free,
    as ``flax.linen.BatchNorm``). With ``ghost_size == B`` this is ordinary batch norm
    (Ioffe & Szegedy 2015). In eval mode the running statistics are used.

    Args:
      x: activations ``(B, F)`` (extra middle axes are normalised over too).
      ghost_size: examples per ghost batch; must divide B.
      params: ``{"scale": (F,), "bias": (F,)}`` or None for no affine transform.
      state: running statistics; None starts from mean 0, var 1.
      train: batch statistics (True) or running statistics (False).
      momentum: running-average momentum in [0, 1).
      eps: variance epsilon.

    Returns:
      ``(y, new_state)`` with ``y`` of the shape of ``x``.
    """
    if x.ndim < 2:
        raise ValueError(f"batch norm needs x of shape (B, F), got {x.shape}.")
    checks.check_positive_int("ghost_size", ghost_size)
    checks.check_unit_interval("momentum", momentum)
    features = x.shape[-1]
    if state is None:
        state = BatchNormState(jnp.zeros((features,), x.dtype), jnp.ones((features,), x.dtype))
    if train:
        b = x.shape[0]
        if b % ghost_size:
            raise ValueError(f"ghost_size {ghost_size} must divide the batch size {b}.")
        g = x.reshape((b // ghost_size, ghost_size) + x.shape[1:])
        axes = tuple(range(1, g.ndim - 1))
        mean = g.mean(axis=axes, keepdims=True)
        var = jnp.mean(jnp.square(g - mean), axis=axes, keepdims=True)
        y = ((g - mean) * jax.lax.rsqrt(var + eps)).reshape(x.shape)
        flat_mean = mean.reshape(-1, features).mean(axis=0)
        flat_var = var.reshape(-1, features).mean(axis=0)
        new_state = BatchNormState(
            momentum * state.mean + (1.0 - momentum) * flat_mean,
            momentum * state.var + (1.0 - momentum) * flat_var,
        )
    else:
        y = (x - state.mean) * jax.lax.rsqrt(state.var + eps)
        new_state = state
    if params is not None:
        y = y * params["scale"] + params["bias"]
    return y, new_state


def batch_norm(
    x: jax.Array,
    *,
    params: dict | None = None,
    state: BatchNormState | None = None,
    train: bool = True,
    momentum: float = 0.99,
    eps: float = 1e-5,
) -> tuple[jax.Array, BatchNormState]:
    """Ordinary batch norm (Ioffe & Szegedy 2015): :func:`ghost_batch_norm` with one ghost."""
    return ghost_batch_norm(
        x,
        ghost_size=x.shape[0],
        params=params,
        state=state,
        train=train,
        momentum=momentum,
        eps=eps,
    )


def count_params(params) -> int:
    """Total number of scalars in a pytree."""
    return int(sum(p.size for p in jax.tree_util.tree_leaves(params)))
