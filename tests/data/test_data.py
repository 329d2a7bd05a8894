import socket
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jreg import data


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _check_arrays(arrs, n_train, n_test, d):
    x_tr, y_tr, x_te, y_te = arrs
    assert x_tr.shape == (n_train, d) and x_te.shape == (n_test, d)
    assert y_tr.shape == (n_train,) and y_te.shape == (n_test,)
    assert x_tr.dtype == x_te.dtype == np.float32
    assert y_tr.dtype == y_te.dtype == np.int32
    assert all(isinstance(a, np.ndarray) for a in arrs)


# ------------------------------------------------------------------ two moons


def test_two_moons_shapes_balance_and_geometry(key):
    arrs = data.two_moons(key, 101, noise=0.1, n_test=50)
    _check_arrays(arrs, 101, 50, 2)
    np.testing.assert_array_equal(np.bincount(arrs[1]), [50, 51])
    np.testing.assert_array_equal(np.bincount(arrs[3]), [25, 25])
    # noise=0 reproduces sklearn make_moons exactly (up to the shuffle)
    from sklearn.datasets import make_moons

    x, y, *_ = data.two_moons(key, 30, noise=0.0)
    xs, ys = make_moons(30, shuffle=False, noise=0.0)
    order, order_s = np.lexsort((x[:, 1], x[:, 0], y)), np.lexsort((xs[:, 1], xs[:, 0], ys))
    np.testing.assert_allclose(x[order], xs[order_s], atol=1e-6)
    np.testing.assert_array_equal(y[order], ys[order_s])


@pytest.mark.parametrize("label_flip", [0.1, 0.25, 1.0])
def test_two_moons_flips_exact_count(key, label_flip):
    n = 101 if label_flip != 0.25 else 10
    clean = data.two_moons(key, n, noise=0.2)
    x, y, x_te, y_te, flipped = data.two_moons_with_flips(key, n, noise=0.2, label_flip=label_flip)
    assert flipped.dtype == bool and flipped.shape == (n,)
    assert flipped.sum() == round(label_flip * n)
    np.testing.assert_array_equal(y != clean[1], flipped)
    np.testing.assert_array_equal(y[flipped], 1 - clean[1][flipped])
    np.testing.assert_array_equal(x, clean[0])  # positions unaffected by flips
    np.testing.assert_array_equal(x_te, clean[2])  # test set clean
    np.testing.assert_array_equal(y_te, clean[3])
    four = data.two_moons(key, n, noise=0.2, label_flip=label_flip)
    np.testing.assert_array_equal(four[1], y)


def test_two_moons_reproducible(key):
    a = data.two_moons(key, 40, noise=0.1, label_flip=0.2)
    b = data.two_moons(key, 40, noise=0.1, label_flip=0.2)
    c = data.two_moons(jax.random.key(1), 40, noise=0.1, label_flip=0.2)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[0], a[2])  # train and test have their own noise


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(n=0, noise=0.1),
        dict(n=-3, noise=0.1),
        dict(n=10, noise=-0.1),
        dict(n=10, noise=float("nan")),
        dict(n=10, noise=0.1, label_flip=1.5),
        dict(n=10, noise=0.1, label_flip=-0.1),
        dict(n=10, noise=0.1, label_flip=float("nan")),
        dict(n=10, noise=0.1, n_test=0),
    ],
)
def test_two_moons_validation(key, kwargs):
    n = kwargs.pop("n")
    with pytest.raises(ValueError):
        data.two_moons(key, n, **kwargs)


def test_two_moons_needs_key():
    with pytest.raises(TypeError, match="key"):
        data.two_moons(0, 10, noise=0.1)


# ------------------------------------------------------------------ MNIST sample


def test_mnist_digits_real_data(key, no_network):
    arrs = data.mnist_digits(300, 100, key=key)
    _check_arrays(arrs, 300, 100, 784)
    x_tr, y_tr, x_te, y_te = arrs
    for x in (x_tr, x_te):
        assert x.min() == 0.0 and x.max() == 1.0
        assert 0.05 < x.mean() < 0.25  # real digits: mostly background
    np.testing.assert_array_equal(np.bincount(y_tr), np.full(10, 30))  # stratified
    np.testing.assert_array_equal(np.bincount(y_te), np.full(10, 10))
    rows_tr = {r.tobytes() for r in x_tr}
    assert len(rows_tr) == 300
    assert not rows_tr & {r.tobytes() for r in x_te}
    again = data.mnist_digits(300, 100, key=key)
    np.testing.assert_array_equal(again[0], x_tr)
    other = data.mnist_digits(300, 100, key=jax.random.key(7))
    assert not np.array_equal(other[0], x_tr)


def test_mnist_digits_uneven_and_full(key):
    x_tr, y_tr, x_te, y_te = data.mnist_digits(4995, 5, key=key)
    assert np.ptp(np.bincount(y_tr, minlength=10)) <= 1
    assert np.ptp(np.bincount(y_te, minlength=10)) <= 1
    assert not {r.tobytes() for r in x_tr} & {r.tobytes() for r in x_te}


def test_mnist_digits_too_many(key):
    with pytest.raises(ValueError, match=r"5,000 images.*tfds_numpy\('mnist'"):
        data.mnist_digits(4500, 501, key=key)
    with pytest.raises(ValueError):
        data.mnist_digits(0, 10, key=key)


# ------------------------------------------------------------------ MNIST-1D


def test_mnist1d_shapes_and_determinism(no_network):
    state = np.random.get_state()
    a = data.mnist1d(83, 21, seed=3)
    _check_arrays(a, 83, 21, 40)
    assert set(np.unique(np.concatenate([a[1], a[3]]))) == set(range(10))
    b = data.mnist1d(83, 21, seed=3)
    c = data.mnist1d(83, 21, seed=4)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0], c[0])
    np.testing.assert_array_equal(np.random.get_state()[1], state[1])  # global state kept
    with pytest.raises(ValueError):
        data.mnist1d(0, 10)
    with pytest.raises(ValueError):
        data.mnist1d(10, 10, seed=-1)


def test_dms_escape_generator():
    kw = dict(num_sites=12, num_substitutions=5, num_surface=4, num_hotspots=2)
    g = data.dms_escape(400, key=jax.random.key(0), **kw)
    assert g["x"].shape == (400, 60) and g["y"].shape == (400,) and g["effects"].shape == (60,)
    # One-hot: at most one substitution per site; Poisson(3) mutations on average.
    assert g["x"].reshape(400, 12, 5).sum(-1).max() == 1
    assert abs(g["x"].sum(1).mean() - 3.0) < 0.3
    # Effects only at hotspots, and hotspots are surface sites.
    site_has_effect = (g["effects"].reshape(12, 5) != 0).any(1)
    assert not (site_has_effect & ~g["hotspot"]).any() and site_has_effect.any()
    assert (
        g["hotspot"].sum() == 2 and g["surface"].sum() == 4 and (g["hotspot"] <= g["surface"]).all()
    )
    np.testing.assert_allclose(g["latent"], g["x"] @ g["effects"], rtol=1e-5, atol=1e-6)
    # Reproducible from the key; the library does not depend on n.
    again = data.dms_escape(50, key=jax.random.key(0), **kw)
    np.testing.assert_array_equal(again["effects"], g["effects"])
    np.testing.assert_array_equal(again["surface"], g["surface"])


# ------------------------------------------------------------------ TFDS (offline, no TF)


@pytest.fixture(scope="module")
def tiny_tfds_dir(tmp_path_factory):
    from tfds_tiny import TinyDigits

    data_dir = tmp_path_factory.mktemp("tfds")
    TinyDigits(data_dir=str(data_dir)).download_and_prepare(file_format="array_record")
    return data_dir


def _sort_rows(x, y):
    order = np.lexsort(x.T[::-1])
    return x[order], y[order]


def test_tfds_numpy_reads_prepared_dataset(tiny_tfds_dir, no_network):
    from tfds_tiny import N_TEST, N_TRAIN, tiny_arrays

    x, y = data.tfds_numpy("tiny_digits", "train", data_dir=tiny_tfds_dir)
    assert x.shape == (N_TRAIN, 16) and x.dtype == np.float32 and y.dtype == np.int32
    images, labels = tiny_arrays("train")
    expected = images.reshape(N_TRAIN, 16).astype(np.float32) / np.float32(255.0)
    got_x, got_y = _sort_rows(x, y)
    exp_x, exp_y = _sort_rows(expected, labels.astype(np.int32))
    np.testing.assert_array_equal(got_x, exp_x)
    np.testing.assert_array_equal(got_y, exp_y)

    x3, y3 = data.tfds_numpy("tiny_digits", "train", data_dir=tiny_tfds_dir, n=3)
    np.testing.assert_array_equal(x3, x[:3])
    np.testing.assert_array_equal(y3, y[:3])
    with pytest.raises(ValueError, match="only 6"):
        data.tfds_numpy("tiny_digits", "train", data_dir=tiny_tfds_dir, n=7)

    arrs = data.tfds_dataset("tiny_digits", n_train=4, n_test=N_TEST, data_dir=tiny_tfds_dir)
    _check_arrays(arrs, 4, N_TEST, 16)
    np.testing.assert_array_equal(arrs[0], x[:4])
    assert "tensorflow" not in sys.modules


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "no_such_dataset_xyz"])
def test_tfds_missing_dataset_clear_error(tmp_path, name, no_network):
    with pytest.raises(data.DatasetNotPreparedError, match="not prepared under") as err:
        data.tfds_numpy(name, "train", data_dir=tmp_path)
    assert "never downloads" in str(err.value) and "tfds build" in str(err.value)
    assert list(tmp_path.iterdir()) == []  # nothing was created or downloaded
    if name == "mnist":
        with pytest.raises(FileNotFoundError, match="not prepared"):
            data.load("mnist", n_train=10, n_test=10, data_dir=tmp_path)


# ------------------------------------------------------------------ load


def test_load_dispatch(key):
    assert set(data.available()) == {
        "two_moons",
        "mnist_digits",
        "mnist1d",
        "mnist",
        "fashion_mnist",
    }
    a = data.load("two_moons", key=key, n=20, noise=0.1)
    b = data.two_moons(key, 20, noise=0.1)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    _check_arrays(data.load("mnist_digits", key=key, n_train=20, n_test=10), 20, 10, 784)
    with pytest.raises(ValueError, match="key"):
        data.load("two_moons", n=20, noise=0.1)


def test_load_unknown_lists_names():
    with pytest.raises(ValueError, match="available: fashion_mnist, mnist, mnist1d") as err:
        data.load("cifar10")
    for name in data.available():
        assert name in str(err.value)


# ------------------------------------------------------------------ random_shift


def _np_shift(imgs, dy, dx):
    out = np.roll(imgs, (dy, dx), axis=(1, 2))
    if dy > 0:
        out[:, :dy, :] = 0
    elif dy < 0:
        out[:, dy:, :] = 0
    if dx > 0:
        out[:, :, :dx] = 0
    elif dx < 0:
        out[:, :, dx:] = 0
    return out


@pytest.mark.parametrize("shift", [1, -2])
def test_random_shift_matches_numpy(key, maybe_jit, shift):
    imgs = np.asarray(jax.random.uniform(key, (3, 28, 28)))
    f = maybe_jit(lambda k, x: data.random_shift(k, x, (shift,), 1.0))
    out = np.asarray(f(key, jnp.asarray(imgs)))
    np.testing.assert_array_equal(out, _np_shift(imgs, shift, shift))
    flat = np.asarray(f(key, jnp.asarray(imgs.reshape(3, 784))))
    assert flat.shape == (3, 784)
    np.testing.assert_array_equal(flat.reshape(3, 28, 28), out)


def test_random_shift_identity_and_per_batch(key, maybe_jit):
    imgs = jax.random.uniform(key, (4, 784)) + 0.1
    same = maybe_jit(lambda k, x: data.random_shift(k, x, p=0.0))(key, imgs)
    np.testing.assert_array_equal(same, imgs)
    # p=1: every image in the batch gets the same (dy, dx)
    imgs3 = np.asarray(imgs).reshape(4, 28, 28)
    for k in jax.random.split(jax.random.key(3), 5):
        out = np.asarray(data.random_shift(k, imgs, p=1.0)).reshape(4, 28, 28)
        matches = [
            (dy, dx)
            for dy in (-2, -1, 1, 2)
            for dx in (-2, -1, 1, 2)
            if np.array_equal(out, _np_shift(imgs3, dy, dx))
        ]
        assert len(matches) == 1


def test_random_shift_probability(key):
    p, n = 0.3, 400
    imgs = jax.random.uniform(key, (2, 28, 28)) + 0.1
    keys = jax.random.split(jax.random.key(11), n)
    outs = jax.vmap(lambda k: data.random_shift(k, imgs, p=p))(keys)
    shifted = np.asarray(jnp.any(outs != imgs[None], axis=(1, 2, 3)))
    se = np.sqrt(p * (1 - p) / n)
    assert abs(shifted.mean() - p) < 4 * se


def test_random_shift_validation(key):
    imgs = jnp.zeros((2, 784))
    with pytest.raises(ValueError):
        data.random_shift(key, imgs, p=1.5)
    with pytest.raises(ValueError):
        data.random_shift(key, imgs, p=float("nan"))
    with pytest.raises(ValueError):
        data.random_shift(key, imgs, shifts=())
    with pytest.raises(ValueError):
        data.random_shift(key, jnp.zeros((2, 100)))


# ------------------------------------------------------------------ bert_mask


def test_bert_mask_statistics(key, maybe_jit):
    vocab, mask_id = 1000, 0
    tokens = jax.random.randint(jax.random.key(5), (200, 500), 1, vocab, dtype=jnp.int32)
    f = maybe_jit(lambda k, t: data.bert_mask(k, t, vocab_size=vocab, mask_id=mask_id))
    inputs, targets, loss_mask = (np.asarray(a) for a in f(key, tokens))
    tokens = np.asarray(tokens)
    assert inputs.dtype == np.int32 and loss_mask.dtype == bool
    np.testing.assert_array_equal(targets, tokens)
    np.testing.assert_array_equal(inputs[~loss_mask], tokens[~loss_mask])
    n = tokens.size
    assert abs(loss_mask.mean() - 0.15) < 4 * np.sqrt(0.15 * 0.85 / n)
    sel_in, sel_tok = inputs[loss_mask], tokens[loss_mask]
    m = sel_in.size
    frac_mask = np.mean(sel_in == mask_id)
    frac_same = np.mean(sel_in == sel_tok)
    frac_rand = 1.0 - frac_mask - frac_same
    # random replacement draws mask_id or the original token with prob 1/vocab each
    for got, want in [
        (frac_mask, 0.8 + 0.1 / vocab),
        (frac_same, 0.1 + 0.1 / vocab),
        (frac_rand, 0.1 * (1 - 2 / vocab)),
    ]:
        assert abs(got - want) < 4 * np.sqrt(want * (1 - want) / m)
    assert sel_in.min() >= 0 and sel_in.max() < vocab


def test_bert_mask_edges_and_validation(key):
    tokens = jnp.arange(12, dtype=jnp.int32).reshape(3, 4)
    inputs, _, sel = data.bert_mask(key, tokens, vocab_size=12, mask_id=11, select=0.0)
    np.testing.assert_array_equal(inputs, tokens)
    assert not np.any(sel)
    _, _, sel = data.bert_mask(key, tokens, vocab_size=12, mask_id=11, select=1.0)
    assert np.all(sel)
    for kwargs in [
        dict(vocab_size=12, mask_id=11, select=1.2),
        dict(vocab_size=12, mask_id=11, select=float("nan")),
        dict(vocab_size=12, mask_id=12),
        dict(vocab_size=12, mask_id=-1),
        dict(vocab_size=0, mask_id=0),
        dict(vocab_size=5, mask_id=0),  # tokens out of range
    ]:
        with pytest.raises(ValueError):
            data.bert_mask(key, tokens, **kwargs)
    with pytest.raises(TypeError):
        data.bert_mask(key, tokens.astype(jnp.float32), vocab_size=12, mask_id=0)


def test_bert_mask_traced_rule_matches_concrete(key):
    """The rule may be a swept (traced) hyperparameter: same draws, same corruption."""
    tokens = jax.random.randint(key, (8, 32), 0, 20)
    k = jax.random.key(3)
    for m, r in [(0.8, 0.1), (1.0, 0.0), (0.8, 0.2), (0.8, 0.0)]:
        want = data.bert_mask(k, tokens, vocab_size=21, mask_id=20, mask_prob=m, random_prob=r)
        got = jax.jit(
            lambda mr: data.bert_mask(
                k, tokens, vocab_size=21, mask_id=20, mask_prob=mr[0], random_prob=mr[1]
            )
        )(jnp.asarray([m, r]))
        for a, b in zip(want, got, strict=True):
            np.testing.assert_array_equal(a, b)
