"""Networks as :class:`Model` pairs ``(init, apply)`` that :func:`jreg.tasks.supervised` trains.

A :class:`Model` is two pure functions: ``init(key, hp) -> (params, model_state)`` and
``apply(params, model_state, x, *, key, train, hp) -> (out, new_model_state, aux)``.
``model_state`` holds what is not trained (batch-norm running statistics; ``{}`` if
none) and ``aux`` any auxiliary outputs a regularizer reads (attention probabilities,
hidden codes; ``{}`` if none). Builders here: :func:`pure` (a plain ``(params, x, *, key,
train)`` function), :func:`linen` and :func:`nnx` (flax modules), :func:`mlp`,
:func:`padded_mlp` (width as a hyperparameter, for width sweeps) and :func:`bn_mlp`
(batch norm or ghost batch norm after every hidden layer).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jreg.nn import models
from jreg.util import checks

PyTree = Any


class Model(NamedTuple):
    """``init(key, hp) -> (params, state)``; ``apply(params, state, x, *, key, train, hp)
    -> (out, new_state, aux)``."""

    init: Callable[..., tuple[PyTree, PyTree]]
    apply: Callable[..., tuple[jax.Array, PyTree, dict]]


def pure(init: Callable, apply: Callable, *, uses_hp: bool = False) -> Model:
    """A Model from ``init(key) -> params`` and ``apply(params, x, *, key, train) -> out``.

    With ``uses_hp`` both also take ``hp`` (``init(key, hp)``, ``apply(..., hp=hp)``).
    """

    def init_fn(key, hp):
        return (init(key, hp) if uses_hp else init(key)), {}

    def apply_fn(params, state, x, *, key, train, hp):
        kw = {"hp": hp} if uses_hp else {}
        return apply(params, x, key=key, train=train, **kw), state, {}

    return Model(init_fn, apply_fn)


def linen(module, example_x: jax.Array) -> Model:
    """A Model from a flax linen module whose ``__call__(x, train)`` takes a ``train`` flag.

    Collections other than ``params`` (e.g. ``batch_stats``) are model state, updated in
    training mode; values ``sow``-n into ``intermediates`` are the auxiliary outputs.
    Dropout draws from the ``dropout`` RNG stream.

    Args:
      module: ``flax.linen.Module``.
      example_x: one input batch, used only for shapes at init.
    """

    def init(key, hp):
        del hp
        k_params, k_drop = jax.random.split(key)
        variables = dict(
            module.init({"params": k_params, "dropout": k_drop}, example_x, train=False)
        )
        variables.pop("intermediates", None)
        return variables.pop("params"), variables

    def apply(params, state, x, *, key, train, hp):
        del hp
        mutable = [*state, "intermediates"] if train else ["intermediates"]
        rngs = {} if key is None else {"dropout": key}
        out, new = module.apply(
            {"params": params, **state}, x, train=train, rngs=rngs, mutable=mutable
        )
        new = dict(new)
        aux = new.pop("intermediates", {})
        return out, {**state, **new}, aux

    return Model(init, apply)


def nnx(make: Callable) -> Model:
    """A Model from a flax nnx module built by ``make(rngs)``; works under ``vmap``.

    The module is split into ``nnx.Param`` (trained) and the rest (batch statistics,
    model state); the module's ``__call__(x)`` runs in ``train()`` or ``eval()`` mode.
    """
    from flax import nnx as _nnx

    graphdef = _nnx.split(_nnx.eval_shape(lambda: make(_nnx.Rngs(0))), _nnx.Param, ...)[0]

    def init(key, hp):
        del hp
        _, params, rest = _nnx.split(make(_nnx.Rngs(key)), _nnx.Param, ...)
        return params, rest

    def apply(params, state, x, *, key, train, hp):
        del key, hp
        module = _nnx.merge(graphdef, params, state)
        module.train() if train else module.eval()
        out = module(x)
        return out, _nnx.split(module, _nnx.Param, ...)[2], {}

    return Model(init, apply)


def mlp(
    widths: Sequence[int], *, activation: str = "tanh", init: str = "lecun", **apply_kw
) -> Model:
    """:func:`jreg.nn.models.mlp_init` / ``mlp_apply`` as a Model; dropout at
       ``hp["dropout_rate"]``.

    ``apply_kw`` are passed to :func:`jreg.nn.models.mlp_apply` (e.g. ``shared_mask``).
    Declare ``dropout_rate`` in the task's hyperparameters to use dropout.
    """
    models.activation_fn(activation)

    def init_fn(key, hp):
        return models.mlp_init(key, widths, init=init), {}

    def apply(params, state, x, *, key, train, hp):
        out = models.mlp_apply(
            params,
            x,
            activation=activation,
            dropout_rate=hp.get("dropout_rate", 0.0),
            key=key,
            train=train,
            **apply_kw,
        )
        return out, state, {}

    return Model(init_fn, apply)


def _padding_stable_normal(key: jax.Array, rows: int, cols: int) -> jax.Array:
    """``(rows, cols)`` standard normals whose entry ``(i, j)`` depends only on (key, i, j).

    Column ``j`` is a 1-D draw with ``fold_in(key, j)``; JAX's threefry 1-D draws are
    prefix-stable, so the top-left block of a padded matrix is the same for every padded
    size: a width starts from the same weights whichever bucket it is padded in.
    """
    draw = lambda j: jax.random.normal(jax.random.fold_in(key, j), (rows,))
    return jax.vmap(draw)(jnp.arange(cols)).T


def padded_mlp(
    in_dim: int,
    num_classes: int,
    max_width: int,
    *,
    num_hidden: int = 2,
    activation: str = "relu",
    init: str = "he",
) -> Model:
    """MLP ``in -> h x num_hidden -> classes`` padded to ``max_width``; ``h = hp["width"]``.

    Hidden units ``>= h`` are multiplied by zero after the activation, so the padded
    network computes exactly the width-``h`` one and its padded weights get exactly zero
    gradient; width becomes an ordinary (swept) hyperparameter. Initialisation uses the
    real fan-in ``h`` and starts padded entries at zero.

    Args:
      in_dim, num_classes: input and output sizes.
      max_width: padded hidden width W (every ``hp["width"]`` must be <= W).
      num_hidden: hidden layers.
      activation: hidden non-linearity.
      init: ``"he"`` (2/fan_in) or ``"lecun"`` (1/fan_in) scaling.
    """
    checks.check_positive_int("max_width", max_width)
    models.activation_fn(activation)
    gain = {"he": 2.0, "lecun": 1.0}
    checks.check_choice("init", init, gain)

    def masks(hp):
        width = jnp.asarray(hp["width"]).astype(jnp.int32)
        return [(jnp.arange(max_width) < width).astype(jnp.float32)] * num_hidden

    def init_fn(key, hp):
        h = jnp.asarray(hp["width"], jnp.float32)
        m = masks(hp)[0]
        sizes = [in_dim] + [max_width] * num_hidden + [num_classes]
        fan_in = [jnp.asarray(in_dim, jnp.float32)] + [h] * num_hidden
        params = []
        for i, kk in enumerate(jax.random.split(key, len(sizes) - 1)):
            a, b = sizes[i], sizes[i + 1]
            w = _padding_stable_normal(kk, a, b) * jnp.sqrt(gain[init] / fan_in[i])
            row = m if i > 0 else jnp.ones((a,))
            col = m if i < num_hidden else jnp.ones((b,))
            params.append({"w": w * row[:, None] * col[None, :], "b": jnp.zeros((b,))})
        return params, {}

    def apply(params, state, x, *, key, train, hp):
        del key, train
        out = models.mlp_apply(params, x, activation=activation, unit_masks=masks(hp))
        return out, state, {}

    return Model(init_fn, apply)


def bn_mlp(
    widths: Sequence[int],
    *,
    ghost_size: int | None = None,
    activation: str = "relu",
    momentum: float = 0.9,
    eps: float = 1e-5,
) -> Model:
    """MLP with (ghost) batch norm after every hidden linear layer; running stats as state.

    Per hidden layer: ``linear (no bias) -> batch norm -> activation``. In training mode
    each ghost batch of ``ghost_size`` examples (``None``: the whole batch, ordinary batch
    norm) is normalised with its own statistics and the running mean / variance move
    toward them (:func:`jreg.nn.models.ghost_batch_norm`); in evaluation mode the running
    statistics are used (Ioffe & Szegedy 2015; Hoffer et al. 2017).

    Args:
      widths: layer sizes, e.g. ``(40, 128, 128, 10)``.
      ghost_size: examples per ghost batch (must divide the batch size), or None.
      activation: hidden non-linearity.
      momentum: running-average momentum (0: the state becomes the statistics of the
        last training batch, e.g. population statistics from one pass over the data).
      eps: variance epsilon (it alone breaks the layer's invariance to scaling ``w``).
    """
    act = models.activation_fn(activation)

    def init(key, hp):
        layers = models.mlp_init(key, widths)
        bn = [models.batch_norm_init(w) for w in widths[1:-1]]
        params = {
            "hidden": [{"w": layer["w"]} for layer in layers[:-1]],
            "bn": [p for p, _ in bn],
            "out": layers[-1],
        }
        return params, {"bn": [s for _, s in bn]}

    def apply(params, state, x, *, key, train, hp):
        del key, hp
        new_stats = []
        for layer, bn, stats in zip(params["hidden"], params["bn"], state["bn"], strict=True):
            z = x @ layer["w"]
            g = (ghost_size or z.shape[0]) if train else z.shape[0]
            z, stats = models.ghost_batch_norm(
                z, ghost_size=g, params=bn, state=stats, train=train, momentum=momentum, eps=eps
            )
            new_stats.append(stats)
            x = act(z)
        out = x @ params["out"]["w"] + params["out"]["b"]
        return out, {"bn": new_stats}, {}

    return Model(init, apply)


def residual_mlp(in_dim: int, num_classes: int, *, width: int = 64, depth: int = 16) -> Model:
    """Residual MLP with stochastic depth at ``hp["drop_path_rate"]`` (Huang et al. 2016).

    ``x (B, in_dim) -> linear (B, width) -> depth × [x + drop_path(W₂ relu(W₁ x + b₁) + b₂)]
    -> relu -> linear (B, num_classes)``. Block ``l = 1..L`` drops its branch with the
    linear depth ramp ``l / L · hp["drop_path_rate"]`` (:func:`jreg.nn.models.drop_path`,
    one draw per example). ``W₂`` is scaled by ``1/√L`` at init so the stack stays O(1).
    """
    checks.check_positive_int("depth", depth)

    def init(key, hp):
        k_in, k_out, *k_blocks = jax.random.split(key, depth + 2)
        blocks = []
        for kb in k_blocks:
            first, second = models.mlp_init(kb, (width, width, width), init="he")
            blocks.append([first, {**second, "w": second["w"] / jnp.sqrt(depth)}])
        params = {
            "in": models.mlp_init(k_in, (in_dim, width))[0],
            "blocks": blocks,
            "out": models.mlp_init(k_out, (width, num_classes))[0],
        }
        return params, {}

    def apply(params, state, x, *, key, train, hp):
        rate = hp.get("drop_path_rate", 0.0)
        h = x @ params["in"]["w"] + params["in"]["b"]
        for depth_l, block in enumerate(params["blocks"], start=1):
            branch = models.mlp_apply(block, h, activation="relu")
            k = None if key is None else jax.random.fold_in(key, depth_l)
            h = h + models.drop_path(branch, depth_l / depth * rate, key=k, train=train)
        out = jax.nn.relu(h) @ params["out"]["w"] + params["out"]["b"]
        return out, state, {}

    return Model(init, apply)
