import numpy as np
import pytest

from ganinterface.engine.colormap import (PALETTES, ColormapError, colorize, diverging_lut,
                                          GridPlan, feature_grid_image, feature_mosaic, plan_grid,
                                          robust_scale)


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


# ---- fitting the grid to the screen ----------------------------------------------------------------
# Expected plans worked out by hand: at zoom z a tile is (h z) x (w z) pixels plus a 1-pixel gap, so
# c columns and r rows need c (w z + 1) - 1 <= width and r (h z + 1) - 1 <= height.

def test_grid_plan_shows_a_layer_at_one_to_one_when_only_that_fits():
    # 128 tiles of 32 x 16 in 215 x 460: rows <= 6 and columns <= 27, so 22..27 columns fit;
    # 26 columns (5 rows) leave 2 cells empty, the fewest.  Zoom 2 would allow only 3 rows of 13.
    assert plan_grid((128, 32, 16), 215, 460) == GridPlan(stride=1, zoom=1, columns=26, fits=True)


def test_grid_plan_enlarges_small_tiles_by_whole_pixels():
    # 8 x 4 tiles at zoom 4 are the 32 x 16 tiles above; zoom 5 (40 x 20) allows 5 rows of 21 only
    assert plan_grid((128, 8, 4), 215, 460) == GridPlan(stride=1, zoom=4, columns=26, fits=True)


def test_grid_plan_skips_pixels_when_the_layer_does_not_fit():
    # stride 4 (16 x 8 tiles): 11 rows x 33 columns < 512; stride 5 (13 x 7): 14 rows x 37 columns
    assert plan_grid((512, 64, 32), 200, 300) == GridPlan(stride=5, zoom=1, columns=37, fits=True)
    assert plan_grid((512, 64, 32), 200, 300, min_stride=6).stride == 6


def test_grid_plan_says_when_nothing_fits():
    assert not plan_grid((1000, 4, 4), 10, 10).fits


def test_zoomed_mosaic_repeats_each_value_as_a_block():
    features = _features()
    plain, _ = feature_mosaic(features, "channel", columns=2)
    zoomed, layout = feature_mosaic(features, "channel", columns=2, zoom=3)
    assert (layout.tile_height, layout.tile_width) == (features.shape[1] * 3, features.shape[2] * 3)
    top, left = layout.tile_origin(3)
    plain_top, plain_left = (features.shape[1] + 1), (features.shape[2] + 1)  # channel 3: row 1, col 1
    tile = zoomed[top:top + layout.tile_height, left:left + layout.tile_width]
    expected = plain[plain_top:plain_top + features.shape[1], plain_left:plain_left + features.shape[2]]
    np.testing.assert_array_equal(tile, np.kron(expected, np.ones((3, 3), np.float32)))
