import jax
import pytest


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "standard_promotion: run with jax's standard dtype promotion (optax's adam "
        "computes `decay ** count` with an int count, which strict promotion rejects)",
    )


@pytest.fixture(autouse=True)
def _strict_dtype_promotion(request):
    """Strict dtype promotion everywhere, except tests marked ``standard_promotion``."""
    mode = "standard" if request.node.get_closest_marker("standard_promotion") else "strict"
    with jax.numpy_dtype_promotion(mode):
        yield


@pytest.fixture
def key():
    return jax.random.key(0)


@pytest.fixture(params=["jit", "nojit"])
def maybe_jit(request):
    """Run a function both compiled and eagerly."""
    return jax.jit if request.param == "jit" else (lambda f, **kw: f)
