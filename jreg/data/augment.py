"""Augmentations (jit-able, explicit keys): pixel shifts and BERT masking."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jreg.util.checks import (
    check_closed_unit_interval,
    check_positive_int,
    is_concrete,
)

# --------------------------------------------------------------------------------------------
# augmentation


def random_shift(
    key: jax.Array,
    images: jax.Array,
    shifts: Sequence[int] = (-2, -1, 1, 2),
    p: float = 0.5,
    *,
    image_shape: tuple[int, int] = (28, 28),
) -> jax.Array:
    """Randomly translate a whole batch of images by a few pixels, zero fill.

    One draw per batch (every image gets the same shift): with probability ``p`` the batch is
    shifted by ``dx`` pixels along the width (last image axis) and ``dy`` pixels along the
    height, ``dx`` and ``dy`` drawn independently and uniformly from ``shifts``; otherwise it
    is returned unchanged. A shift moves content towards higher indices for positive values:
    ``out[..., i, j] = img[..., i - dy, j - dx]`` where that index is inside the image and 0
    elsewhere (no wraparound). ``p = 0`` is the identity. Jit-able (``key``, ``images``, ``p``
    may be traced; ``shifts`` and ``image_shape`` are static).

    Args:
        key: JAX PRNG key.
        images: ``(B, H*W)`` flattened or ``(B, H, W)`` images.
        shifts: non-empty candidate offsets in pixels (integers).
        p: probability in ``[0, 1]`` that the batch is shifted.
        image_shape: ``(H, W)``.

    Returns:
        Array of the same shape and dtype as ``images``.
    """
    k_apply, k_dx, k_dy = jax.random.split(key, 3)
    shifts = tuple(shifts)
    if not shifts or not all(
        isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in shifts
    ):
        raise ValueError(f"shifts must be a non-empty sequence of integers, got {shifts!r}.")
    check_closed_unit_interval("p", p)
    if len(image_shape) != 2:
        raise ValueError(f"image_shape must be (H, W), got {image_shape!r}.")
    h, w = (int(s) for s in image_shape)
    check_positive_int("image_shape[0]", h)
    check_positive_int("image_shape[1]", w)
    images = jnp.asarray(images)
    shape = images.shape
    if images.ndim == 2 and shape[1] == h * w:
        imgs = images.reshape(shape[0], h, w)
    elif images.ndim == 3 and shape[1:] == (h, w):
        imgs = images
    else:
        raise ValueError(
            f"images must have shape (B, {h * w}) or (B, {h}, {w}), got {shape}; "
            "set image_shape for other sizes."
        )

    table = jnp.asarray(shifts, dtype=jnp.int32)
    apply = jax.random.bernoulli(k_apply, p)
    dx = jnp.where(apply, table[jax.random.randint(k_dx, (), 0, len(shifts))], 0)
    dy = jnp.where(apply, table[jax.random.randint(k_dy, (), 0, len(shifts))], 0)

    rolled = jnp.roll(imgs, (dy, dx), axis=(1, 2))
    rows = jnp.arange(h, dtype=jnp.int32) - dy
    cols = jnp.arange(w, dtype=jnp.int32) - dx
    valid = ((rows >= 0) & (rows < h))[:, None] & ((cols >= 0) & (cols < w))[None, :]
    out = jnp.where(valid[None], rolled, jnp.zeros((), imgs.dtype))
    return out.reshape(shape)


def bert_mask(
    key: jax.Array,
    tokens: jax.Array,
    *,
    vocab_size: int,
    mask_id: int,
    select: float = 0.15,
    mask_prob: float = 0.8,
    random_prob: float = 0.1,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """BERT masked-language-model corruption (Devlin et al. 2019, Sec. 3.1).

    Each position is selected independently with probability ``select``. A selected token is
    replaced by ``mask_id`` with probability ``mask_prob`` (0.8), by a token drawn uniformly
    from ``[0, vocab_size)`` with probability ``random_prob`` (0.1; it may equal the
    original), and left unchanged otherwise. Unselected positions are never changed. Jit-able.

    Args:
        key: JAX PRNG key.
        tokens: integer token ids, shape ``(..., L)``, in ``[0, vocab_size)``.
        vocab_size: vocabulary size (>= 1).
        mask_id: id of the ``[MASK]`` token, in ``[0, vocab_size)``.
        select: selection probability in ``[0, 1]``.
        mask_prob, random_prob: the rule for a selected token (BERT's ablation, Sec. C.2,
            compares 80/10/10, 100/0/0, 80/0/20, 80/20/0 mask / keep / random);
            ``mask_prob + random_prob <= 1``. ``select``, ``mask_prob`` and ``random_prob``
            may be traced (swept hyperparameters); they are then not checked.

    Returns:
        ``(inputs, targets, loss_mask)``: corrupted tokens (same shape and dtype as
        ``tokens``), the original ``tokens``, and the bool selection mask (loss is taken only
        where it is True).

    References:
        Devlin, Chang, Lee, Toutanova, "BERT: Pre-training of Deep Bidirectional Transformers
        for Language Understanding", NAACL 2019.
    """
    k_sel, k_kind, k_tok = jax.random.split(key, 3)
    check_positive_int("vocab_size", vocab_size)
    if not isinstance(mask_id, numbers.Integral) or isinstance(mask_id, bool):
        raise ValueError(f"mask_id must be an integer, got {mask_id!r}.")
    if not 0 <= mask_id < vocab_size:
        raise ValueError(f"mask_id must lie in [0, vocab_size={vocab_size}), got {mask_id}.")
    check_closed_unit_interval("select", select)
    check_closed_unit_interval("mask_prob", mask_prob)
    check_closed_unit_interval("random_prob", random_prob)
    if is_concrete((mask_prob, random_prob)) and mask_prob + random_prob > 1:
        raise ValueError(f"mask_prob + random_prob must be <= 1, got {mask_prob + random_prob}.")
    tokens = jnp.asarray(tokens)
    if not jnp.issubdtype(tokens.dtype, jnp.integer):
        raise TypeError(f"tokens must be integer ids, got dtype {tokens.dtype}.")
    if tokens.ndim < 1:
        raise ValueError(f"tokens must have shape (..., L), got {tokens.shape}.")
    if is_concrete(tokens) and tokens.size:
        host = np.asarray(tokens)  # on the host: also a constant closed over by a jit
        lo, hi = int(host.min()), int(host.max())
        if lo < 0 or hi >= vocab_size:
            raise ValueError(f"tokens must lie in [0, {vocab_size}), found [{lo}, {hi}].")

    selected = jax.random.bernoulli(k_sel, select, tokens.shape)
    kind = jax.random.uniform(k_kind, tokens.shape)
    random_tok = jax.random.randint(k_tok, tokens.shape, 0, vocab_size, dtype=tokens.dtype)
    inputs = jnp.where(
        selected & (kind < mask_prob),
        jnp.asarray(mask_id, tokens.dtype),
        jnp.where(selected & (kind < mask_prob + random_prob), random_tok, tokens),
    )
    return inputs, tokens, selected
