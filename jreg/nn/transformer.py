"""A small pre-LN transformer whose attention probabilities are an auxiliary output.

Pure functions (no flax): :func:`init` builds the parameters, :func:`apply` runs token ids
``(B, L)`` to logits ``(B, L, K)`` and returns the attention probabilities of every layer
and head, the largest attention logit and the final hidden states, so that regularizers
(:func:`jreg.regularizers.activity.attention_entropy`) and probes can read them. :func:`model` wraps
both as a :class:`jreg.nn.nets.Model` whose ``aux`` is that dictionary.

Block (pre-LN, Xiong et al. 2020): ``h ← h + Attn(LN(h))``, ``h ← h + MLP(LN(h))`` with
a 4·d GELU MLP, then a final LayerNorm and a linear read-out. Optional QK-layernorm
(Dehghani et al. 2023, "Scaling vision transformers to 22 billion parameters"; Wortsman
et al. 2023, "Small-scale proxies for large-scale transformer training instabilities"):
queries and keys are layer-normalised per head before the dot product, which bounds the
attention logits and prevents attention-entropy collapse (Zhai et al. 2023, "Stabilizing
transformer training by preventing attention entropy collapse"). Optional σReparam (Zhai
et al. 2023): every linear layer of a block uses ``Ŵ = γ / σ(W) · W`` with σ(W) from one
power-iteration step per training step (:func:`sigma_reparam`; the vectors are model
state, :func:`init_state`) and a learnable scalar γ per matrix (initialised to 1).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jreg.nn import nets
from jreg.regularizers import spectral
from jreg.util.checks import is_static_zero as _is_static_zero

PyTree = Any

REPARAM = ("qkv", "out", "mlp1", "mlp2")  # the matrices of a block that σReparam rescales


def _dense(key, fan_in, fan_out):
    return jax.random.normal(key, (fan_in, fan_out)) / jnp.sqrt(fan_in)


def init(
    key: jax.Array,
    *,
    vocab_size: int,
    num_outputs: int,
    length: int,
    d_model: int = 64,
    num_heads: int = 4,
    num_layers: int = 2,
) -> PyTree:
    """Parameters of the transformer.

    Args:
      key: PRNG key.
      vocab_size: V, input token ids lie in ``[0, V)``.
      num_outputs: K, logits per position.
      length: L, maximum sequence length (learned position embeddings (L, d)).
      d_model: d (divisible by ``num_heads``).
      num_heads: H.
      num_layers: number of blocks.

    Returns:
      ``{"embed": (V, d), "pos": (L, d), "blocks": [..], "ln_f": .., "head": (d, K)}``;
      each block holds ``ln1``/``ln2`` (scale, bias (d,)), ``qkv`` (d, 3d), ``out`` (d, d),
      ``q_norm``/``k_norm`` scales (d/H,) (used only with QK-layernorm), ``mlp1`` (d, 4d),
      ``b1`` (4d,), ``mlp2`` (4d, d), ``b2`` (d,), and ``gamma``: ``{name: ()}`` for each
      matrix in :data:`REPARAM`, initialised to 1 (used only with σReparam).
    """
    if d_model % num_heads:
        raise ValueError(f"d_model={d_model} must be divisible by num_heads={num_heads}.")
    keys = jax.random.split(key, 3 + 4 * num_layers)
    ln = lambda: {"scale": jnp.ones(d_model), "bias": jnp.zeros(d_model)}  # noqa: E731
    dh = d_model // num_heads
    blocks = []
    for i in range(num_layers):
        k = keys[3 + 4 * i : 7 + 4 * i]
        blocks.append(
            {
                "ln1": ln(),
                "ln2": ln(),
                "qkv": _dense(k[0], d_model, 3 * d_model),
                "out": _dense(k[1], d_model, d_model) / jnp.sqrt(2.0 * num_layers),
                "q_norm": jnp.ones(dh),
                "k_norm": jnp.ones(dh),
                "mlp1": _dense(k[2], d_model, 4 * d_model),
                "b1": jnp.zeros(4 * d_model),
                "mlp2": _dense(k[3], 4 * d_model, d_model) / jnp.sqrt(2.0 * num_layers),
                "b2": jnp.zeros(d_model),
                "gamma": {name: jnp.ones(()) for name in REPARAM},
            }
        )
    return {
        "embed": 0.5 * jax.random.normal(keys[0], (vocab_size, d_model)),
        "pos": 0.5 * jax.random.normal(keys[1], (length, d_model)),
        "blocks": blocks,
        "ln_f": ln(),
        "head": _dense(keys[2], d_model, num_outputs),
    }


def init_state(key: jax.Array, params: PyTree) -> PyTree:
    """Power-iteration vectors for σReparam: ``{"blocks": [{name: (fan_out,)}]}``.

    One random unit vector per matrix in :data:`REPARAM` (the right singular vector
    estimate of :func:`jreg.regularizers.spectral.power_iteration`); model state, not trained.
    """
    blocks = []
    for i, blk in enumerate(params["blocks"]):
        keys = jax.random.split(jax.random.fold_in(key, i), len(REPARAM))
        vs = {}
        for k, name in zip(keys, REPARAM, strict=True):
            v = jax.random.normal(k, (blk[name].shape[-1],))
            vs[name] = v / jnp.linalg.norm(v)
        blocks.append(vs)
    return {"blocks": blocks}


def sigma_reparam(
    w: jax.Array, gamma: jax.Array, v: jax.Array, *, update: bool = True
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """σReparam (Zhai et al. 2023, Eq. 3): ``Ŵ = γ / σ(W) · W``.

    σ(W) is estimated as in the paper: one step of
    :func:`jreg.regularizers.spectral.power_iteration`
    from the stored vector per training step (``update=True``), the new vector is not
    differentiated (``stop_gradient``), and ``σ = ‖W v‖`` is differentiated w.r.t. ``W``
    only (``∂σ/∂W = u vᵀ`` with ``u = W v / ‖W v‖``). With ``update=False`` (evaluation)
    the stored vector is used as is. Once ``v`` has converged, ``σ`` is the largest
    singular value of ``W`` and ``Ŵ`` has spectral norm ``|γ|``.

    Args:
      w: weight matrix (m, n).
      gamma: learnable scalar γ ().
      v: unit right-singular-vector estimate (n,).
      update: do one power-iteration step first (training) or not (evaluation).

    Returns:
      ``(w_hat (m, n), sigma (), v (n,))``: the reparametrized matrix, the estimate of
      σ(W) it used, and the vector to store for the next step.

    References:
      Zhai, Likhomanenko, Littwin, Busbridge, Ramapuram, Zhang, Gu, Susskind,
      "Stabilizing transformer training by preventing attention entropy collapse",
      ICML 2023.
    """
    if update:
        _, v = spectral.power_iteration(w, v, 1)
        v = jax.lax.stop_gradient(v)
    sigma, _ = spectral.power_iteration(w, v, 0)
    return gamma / sigma * w, sigma, v


_reparam = sigma_reparam  # apply's keyword of the same name shadows it


def _layer_norm(x, scale=None, bias=None, eps=1e-5):
    x = (x - x.mean(-1, keepdims=True)) / jnp.sqrt(x.var(-1, keepdims=True) + eps)
    return x if scale is None else x * scale + (0.0 if bias is None else bias)


def apply(
    params: PyTree,
    tokens: jax.Array,
    *,
    causal: bool = False,
    qk_norm: Any = 0.0,
    sigma_reparam: Any = 0.0,
    state: PyTree | None = None,
    train: bool = False,
) -> tuple[jax.Array, dict]:
    """Run the transformer.

    Args:
      params: from :func:`init`.
      tokens: integer ids (B, L'), L' ≤ L.
      causal: mask attention to keys after the query (autoregressive) or not (BERT).
      qk_norm: QK-layernorm on (> 0) or off (0); may be a traced hyperparameter, so
        both kinds of model can share one vmapped sweep.
      sigma_reparam: σReparam (:func:`sigma_reparam`) of the block matrices on (> 0) or
        off (0); may be traced. Needs ``state`` unless it is a concrete 0.
      state: from :func:`init_state` (the power-iteration vectors), or None.
      train: with ``state``, do one power-iteration step per matrix (training) or not.

    Returns:
      ``(logits (B, L', K), aux)`` with ``aux = {"attention": (layers, B, H, L', L')``
      probabilities (rows sum to 1; masked entries 0), ``"max_logit"``: scalar, the
      largest absolute pre-softmax attention logit over allowed entries,
      ``"hidden": (B, L', d)`` the final layer-normalised states fed to the read-out,
      ``"state"``: the updated power-iteration vectors (``state`` unchanged when not
      training; None without ``state``)}.
    """
    if state is None and not _is_static_zero(sigma_reparam):
        raise ValueError("sigma_reparam needs state=init_state(key, params) (its vectors).")
    b, n = tokens.shape
    h = params["embed"][tokens] + params["pos"][:n]
    d = h.shape[-1]
    num_heads = d // params["blocks"][0]["q_norm"].shape[0]
    allowed = jnp.tril(jnp.ones((n, n), bool)) if causal else jnp.ones((n, n), bool)
    probs_all, max_logit, new_state = [], jnp.zeros(()), []
    for i, blk in enumerate(params["blocks"]):
        if state is not None:
            blk, vs = dict(blk), {}
            for name in REPARAM:
                w_hat, _, vs[name] = _reparam(
                    blk[name], blk["gamma"][name], state["blocks"][i][name], update=train
                )
                blk[name] = jnp.where(jnp.asarray(sigma_reparam) > 0, w_hat, blk[name])
            new_state.append(vs)
        x = _layer_norm(h, blk["ln1"]["scale"], blk["ln1"]["bias"])
        q, k, v = jnp.split(x @ blk["qkv"], 3, axis=-1)
        q, k, v = (t.reshape(b, n, num_heads, -1).transpose(0, 2, 1, 3) for t in (q, k, v))
        on = jnp.asarray(qk_norm) > 0
        q = jnp.where(on, _layer_norm(q, blk["q_norm"]), q)
        k = jnp.where(on, _layer_norm(k, blk["k_norm"]), k)
        logits = q @ k.transpose(0, 1, 3, 2) / jnp.sqrt(q.shape[-1])  # (B, H, L, L)
        max_logit = jnp.maximum(max_logit, jnp.max(jnp.where(allowed, jnp.abs(logits), 0.0)))
        probs = jax.nn.softmax(jnp.where(allowed, logits, -jnp.inf), axis=-1)
        probs_all.append(probs)
        att = (probs @ v).transpose(0, 2, 1, 3).reshape(b, n, d)
        h = h + att @ blk["out"]
        x = _layer_norm(h, blk["ln2"]["scale"], blk["ln2"]["bias"])
        h = h + jax.nn.gelu(x @ blk["mlp1"] + blk["b1"]) @ blk["mlp2"] + blk["b2"]
    hidden = _layer_norm(h, params["ln_f"]["scale"], params["ln_f"]["bias"])
    aux = {"attention": jnp.stack(probs_all), "max_logit": max_logit, "hidden": hidden}
    aux["state"] = None if state is None else {"blocks": new_state}
    return hidden @ params["head"], aux


def model(
    *,
    vocab_size: int,
    num_outputs: int,
    length: int,
    causal: bool = False,
    d_model: int = 64,
    num_heads: int = 4,
    num_layers: int = 2,
) -> nets.Model:
    """The transformer as a :class:`jreg.nn.nets.Model` (x: token ids (B, L) -> (B, L, K)).

    QK-layernorm is read from ``hp["qk_norm"]`` and σReparam from ``hp["sigma_reparam"]``
    (0 if undeclared), so declare ``hparams={"qk_norm": 0.0, "sigma_reparam": 0.0}`` to
    sweep them. The model state holds σReparam's power-iteration vectors
    (:func:`init_state`; one step per training step) when ``hp`` declares
    ``sigma_reparam``, else it is empty. ``aux`` is :func:`apply`'s dictionary less
    ``"state"``.
    """
    shape = dict(vocab_size=vocab_size, num_outputs=num_outputs, length=length)
    shape.update(d_model=d_model, num_heads=num_heads, num_layers=num_layers)

    def init_fn(key, hp):
        params = init(key, **shape)
        if "sigma_reparam" not in hp:
            return params, {}
        return params, init_state(jax.random.fold_in(key, 1), params)

    def apply_fn(params, state, x, *, key, train, hp):
        out, aux = apply(
            params,
            x,
            causal=causal,
            qk_norm=hp.get("qk_norm", 0.0),
            sigma_reparam=hp.get("sigma_reparam", 0.0),
            state=state or None,
            train=train,
        )
        new_state = aux.pop("state")
        return out, (state if new_state is None else new_state), aux

    return nets.Model(init_fn, apply_fn)
