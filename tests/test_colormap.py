import numpy as np
import pytest

from ganinterface.engine.colormap import (PALETTES, ColormapError, colorize, diverging_lut,
                                          feature_grid_image, feature_mosaic, robust_scale)


@pytest.mark.parametrize("palette", list(PALETTES))
def test_lut_runs_negative_white_positive(palette):
    lut = diverging_lut(palette, n=257)
    negative, white, positive = PALETTES[palette]
    assert lut.shape == (257, 3) and lut.dtype == np.uint8
    assert tuple(lut[0]) == negative and tuple(lut[128]) == white and tuple(lut[-1]) == positive
    # a quarter of the way: halfway between the negative colour and white
    np.testing.assert_allclose(lut[64], (np.array(negative) + 255) / 2, atol=1)


def test_default_palette_is_red_negative_green_positive():
    rgb = colorize(np.array([-3.0, 0.0, 3.0, np.nan]), scale=3.0)
    red, white, green, gap = rgb.astype(int)
    assert red[0] > 150 and red[1] < 60 and red[2] < 60
    assert tuple(white) == (255, 255, 255)
    assert green[1] > 100 and green[0] < 60 and green[1] > green[2]
    assert tuple(gap) not in {tuple(red), tuple(white), tuple(green)}
    # beyond the scale: clipped to the end colours
    np.testing.assert_array_equal(colorize(np.array([-30.0, 30.0]), 3.0), rgb[[0, 2]])


def test_robust_scale_ignores_a_few_hot_pixels():
    values = np.ones(1000, np.float32)
    values[:3] = 1000.0
    assert robust_scale(values) == pytest.approx(1.0)
    assert robust_scale(np.zeros(10)) == 1.0  # never divide by zero
    sparse = np.zeros(1000, np.float32)
    sparse[0] = -5.0
    assert robust_scale(sparse) == pytest.approx(5.0)


def _features():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(5, 3, 4)).astype(np.float32)
    features[2] *= 10.0  # one loud channel
    return features


def test_mosaic_places_each_channel_and_gaps_are_nan():
    features = _features()
    mosaic, layout = feature_mosaic(features, "channel", columns=2, gap=1)
    assert mosaic.shape == (3 * 3 + 2, 2 * 4 + 1) == layout.shape
    for channel in range(5):
        row, col = divmod(channel, 2)
        tile = mosaic[row * 4: row * 4 + 3, col * 5: col * 5 + 4]
        scale = np.percentile(np.abs(features[channel]), 99)
        np.testing.assert_allclose(tile, np.clip(features[channel] / scale, -1, 1), rtol=1e-5)
    assert np.isnan(mosaic[3, :]).all() and np.isnan(mosaic[:, 4]).all()
    assert np.isnan(mosaic[8:, 5:]).all()  # the sixth cell is empty


def test_shared_scale_keeps_channels_comparable():
    features = _features()
    mosaic, layout = feature_mosaic(features, "shared", columns=5, gap=0)
    scale = np.percentile(np.abs(features), 99)
    assert layout.scales == pytest.approx([scale] * 5)
    np.testing.assert_allclose(mosaic[:, :4], np.clip(features[0] / scale, -1, 1), rtol=1e-5)


def test_channel_at_inverts_the_layout():
    features = _features()
    mosaic, layout = feature_mosaic(features, "channel", columns=3, gap=2)
    for row in range(mosaic.shape[0]):
        for col in range(mosaic.shape[1]):
            hit = layout.channel_at(row, col)
            if hit is None:
                assert np.isnan(mosaic[row, col])
            else:
                channel, y, x = hit
                expected = np.clip(features[channel, y, x] / layout.scales[channel], -1, 1)
                assert mosaic[row, col] == pytest.approx(expected)
    assert layout.channel_at(-1, 0) is None
    assert layout.channel_at(0, mosaic.shape[1] + 5) is None


def test_grid_image_and_errors():
    image = feature_grid_image(_features(), "shared", columns=5, gap=1, min_tile=8)
    assert image.dtype == np.uint8 and image.shape == (6, 5 * 8 + 4, 3)
    with pytest.raises(ColormapError, match="palette"):
        feature_grid_image(_features(), palette="rainbow")
    with pytest.raises(ColormapError, match="scale"):
        feature_mosaic(_features(), "global")
