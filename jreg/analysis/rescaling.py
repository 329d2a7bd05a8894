"""ReLU rescaling symmetry: a flat direction of the loss that weight decay removes.

ReLU is positively homogeneous, ``relu(c z) = c relu(z)`` for ``c > 0``, so multiplying
a hidden layer's weights and bias by ``c`` and the next layer's weights by ``1/c``
leaves the network's function unchanged (:func:`rescale_layer`). The loss is therefore
constant along a curve through parameter space, and gradient descent cannot choose a
point on it: under gradient flow each hidden unit's *imbalance*
``‖incoming weights and bias‖² − ‖outgoing weights‖²`` is conserved (Du, Hu & Lee
2018). Weight decay adds ``λ/2 ‖θ‖²``, which is minimised along the curve where the two
norms are equal, so with decay the imbalance decays and the layers become balanced
(:func:`unit_imbalance`, :func:`layer_norms`).

Parameters are the list-of-layers format of :func:`jreg.nn.models.mlp_init`:
``[{"w": (d_in, d_out), "b": (d_out,)}, ...]``.

References:
    Neyshabur, Salakhutdinov & Srebro, "Path-SGD: Path-Normalized Optimization in Deep
    Neural Networks", NeurIPS 2015.
    Du, Hu & Lee, "Algorithmic Regularization in Learning Deep Homogeneous Models: Layers
    are Automatically Balanced", NeurIPS 2018.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["layer_norms", "rescale_layer", "unit_imbalance"]


def _check_layer(params: list, layer: int) -> None:
    if not 0 <= layer < len(params) - 1:
        raise ValueError(
            f"layer must be a hidden layer in [0, {len(params) - 1}) (it needs a next "
            f"layer), got {layer}."
        )


def rescale_layer(params: list, layer: int, c) -> list:
    """Scale a hidden layer's weights and bias by ``c`` and the next layer's weights by ``1/c``.

    For a ReLU (or leaky-ReLU) MLP and ``c > 0`` the function computed is unchanged; in
    floating point exactly so when ``c`` is a power of two, else up to rounding.

    Args:
      params: MLP parameters (list of ``{"w", "b"}``).
      layer: index of a hidden layer (followed by another layer).
      c: positive scale (scalar).

    Returns:
      New parameters (the input is not modified).
    """
    _check_layer(params, layer)
    out = list(params)
    out[layer] = {**params[layer], "w": params[layer]["w"] * c, "b": params[layer]["b"] * c}
    out[layer + 1] = {**params[layer + 1], "w": params[layer + 1]["w"] / c}
    return out


def layer_norms(params: list) -> jax.Array:
    """Frobenius norm of every layer's weight matrix, shape (L,)."""
    return jnp.stack([jnp.linalg.norm(p["w"]) for p in params])


def unit_imbalance(params: list, layer: int) -> jax.Array:
    """Per hidden unit of ``layer``: ``‖w_in‖² + b² − ‖w_out‖²``, shape (d_out,).

    ``w_in`` is the unit's column of ``params[layer]["w"]``, ``b`` its bias and ``w_out``
    its row of ``params[layer + 1]["w"]``. Conserved by gradient flow on any loss of a
    ReLU network (Du et al. 2018); driven to zero by weight decay.
    """
    _check_layer(params, layer)
    w_in, b = params[layer]["w"], params[layer]["b"]
    w_out = params[layer + 1]["w"]
    return jnp.sum(w_in**2, axis=0) + b**2 - jnp.sum(w_out**2, axis=1)
