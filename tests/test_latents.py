import numpy as np
import pytest
import torch

from ganinterface.engine.device import DeviceError, pick_device
from ganinterface.engine.latents import (LatentError, class_vector, lerp, parse_seeds, slerp,
                                         z_from_seed)


def test_z_from_seed_is_gen_images_draw():
    # gen_images.py: torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)), cast to
    # float32 by the mapping network.
    rng = np.random.RandomState(42)
    expected = np.array([rng.randn() for _ in range(7)], dtype=np.float64).reshape(1, 7)
    z = z_from_seed(42, 7)
    assert z.shape == (1, 7) and z.dtype == np.float32
    np.testing.assert_array_equal(z, expected.astype(np.float32))
    assert not np.array_equal(z_from_seed(43, 7), z)


def test_parse_seeds_lists_and_inclusive_ranges():
    assert parse_seeds("0,3,10-13") == [0, 3, 10, 11, 12, 13]
    assert parse_seeds(" 7 ") == [7]
    assert parse_seeds("5-5,1") == [5, 1]


@pytest.mark.parametrize("text, message", [
    ("", "is not a number"), ("1,,2", "is not a number"), ("a", "'a'"), ("3-1", "backwards"),
    ("-4", "is not a number"), ("1.5", "'1.5'"), ("99999999999", "out of range"),
])
def test_parse_seeds_errors_name_the_part(text, message):
    with pytest.raises(LatentError, match=message):
        parse_seeds(text)


def test_class_vector():
    assert class_vector(None, 0) is None
    np.testing.assert_array_equal(class_vector(2, 4), [[0, 0, 1, 0]])
    with pytest.raises(LatentError, match="unconditional"):
        class_vector(1, 0)
    with pytest.raises(LatentError, match="0 to 3"):
        class_vector(4, 4)
    with pytest.raises(LatentError, match="conditional"):
        class_vector(None, 4)


def test_lerp_endpoints_and_midpoint():
    a, b = np.array([0.0, 2.0]), np.array([4.0, -2.0])
    np.testing.assert_allclose(lerp(a, b, 0.0), a)
    np.testing.assert_allclose(lerp(a, b, 1.0), b)
    np.testing.assert_allclose(lerp(a, b, 0.25), [1.0, 1.0])


def test_lerp_lands_exactly_on_both_ends():
    """A keyframe's frame must render as the keyframe: no rounding off either end."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 1000)).astype(np.float32)
    assert not np.array_equal(a + (b - a), b)  # the naive line misses here
    assert np.array_equal(lerp(a, b, 0.0), a) and np.array_equal(lerp(a, b, 1.0), b)


def test_slerp_follows_the_great_circle():
    a = np.array([1.0, 0.0, 0.0])
    b = np.array([0.0, 3.0, 0.0])
    mid = slerp(a, b, 0.5)
    # halfway in angle (45 degrees), halfway in length (2)
    np.testing.assert_allclose(mid, [2 * np.cos(np.pi / 4), 2 * np.sin(np.pi / 4), 0.0], atol=1e-6)
    np.testing.assert_allclose(slerp(a, b, 0.0), a, atol=1e-6)
    np.testing.assert_allclose(slerp(a, b, 1.0), b, atol=1e-6)
    # parallel vectors: plain lerp, no NaN
    np.testing.assert_allclose(slerp(a, 2 * a, 0.5), 1.5 * a, atol=1e-6)
    batch = slerp(np.stack([a, a]), np.stack([b, 2 * a]), 0.5)
    np.testing.assert_allclose(batch[1], 1.5 * a, atol=1e-6)


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device().type in ("cpu", "cuda", "mps")
    with pytest.raises(DeviceError, match="unknown device 'tpu'"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="not available.*available: cpu"):
            pick_device("cuda")
