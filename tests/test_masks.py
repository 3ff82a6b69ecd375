import math

import numpy as np
import pytest

from ganinterface.engine.masks import MaskError, rasterize
from ganinterface.engine.scene import Bitmap, Mask, Rect, Stroke


def _distance_to_segment(px, py, ax, ay, bx, by):
    """Plain geometry: closest point on the segment, found by projecting and clamping."""
    vx, vy = bx - ax, by - ay
    wx, wy = px - ax, py - ay
    seg_len2 = vx * vx + vy * vy
    t = 0.0 if seg_len2 == 0 else max(0.0, min(1.0, (wx * vx + wy * vy) / seg_len2))
    cx, cy = ax + t * vx, ay + t * vy
    return math.sqrt((px - cx) ** 2 + (py - cy) ** 2)


def _reference_hard_stroke(points, radius, height, width):
    """Pixel (i, j) is inside if its centre is within ``radius`` image heights of the polyline."""
    out = np.zeros((height, width), np.float32)
    for i in range(height):
        for j in range(width):
            px = (j + 0.5) / width * width / height  # in image heights
            py = (i + 0.5) / height
            best = min(_distance_to_segment(px, py, a[0] * width / height, a[1],
                                            b[0] * width / height, b[1])
                       for a, b in zip(points[:-1], points[1:]))
            out[i, j] = 1.0 if best <= radius else 0.0
    return out


POLYLINE = ((0.2, 0.3), (0.7, 0.35), (0.5, 0.8))


def test_hard_stroke_matches_plain_distance_to_segments():
    # 128x64: fine enough that rasterize samples exactly the pixel centres (no supersampling)
    got = rasterize(Mask((Stroke(POLYLINE, radius=0.06, softness=0.0),)), 128, 64)
    expected = _reference_hard_stroke(POLYLINE, 0.06, 128, 64)
    np.testing.assert_array_equal(got, expected)


def test_soft_stroke_is_one_inside_and_fades_to_zero_at_radius():
    mask = Mask((Stroke(((0.5, 0.5),), radius=0.2, softness=0.5),))
    got = rasterize(mask, 128, 128)
    centre_row = got[64]
    xs = (np.arange(128) + 0.5) / 128
    distance = np.abs(xs - 0.5)
    assert np.all(centre_row[distance <= 0.099] == 1.0)
    assert np.all(centre_row[distance >= 0.2] == 0.0)
    ramp = centre_row[(distance > 0.1) & (distance < 0.2)]
    assert np.all((ramp > 0) & (ramp < 1))
    left_half = centre_row[:64][::-1]  # moving outwards from the centre
    assert np.all(np.diff(left_half) <= 0)


@pytest.mark.parametrize("small", [(8, 4), (16, 8), (4, 2)])
def test_same_mask_agrees_across_resolutions(small):
    mask = Mask((Stroke(POLYLINE, radius=0.08, softness=0.4),
                 Rect(0.1, 0.6, 0.45, 0.9, softness=0.2),
                 Stroke(((0.3, 0.3), (0.6, 0.3)), radius=0.03, erase=True)))
    big = rasterize(mask, 128, 64)
    h, w = small
    shrunk = big.reshape(h, 128 // h, w, 64 // w).mean(axis=(1, 3))
    np.testing.assert_allclose(rasterize(mask, h, w), shrunk, atol=1e-5)


def test_odd_resolution_agrees_roughly_with_a_fine_raster():
    mask = Mask((Stroke(POLYLINE, radius=0.1, softness=0.5),))
    fine = rasterize(mask, 300, 150)
    coarse = rasterize(mask, 12, 6)
    shrunk = fine.reshape(12, 25, 6, 25).mean(axis=(1, 3))
    assert np.abs(coarse - shrunk).max() < 0.02


def test_rect_hard_edges_and_pixel_coverage():
    got = rasterize(Mask((Rect(0.25, 0.5, 0.75, 1.0),)), 8, 8)
    expected = np.zeros((8, 8), np.float32)
    expected[4:, 2:6] = 1.0
    np.testing.assert_array_equal(got, expected)
    # an edge through the middle of a pixel covers half of it
    half = rasterize(Mask((Rect(0.0, 0.0, 0.5625, 1.0),)), 1, 8)  # 4.5 of 8 columns
    np.testing.assert_allclose(half[0], [1, 1, 1, 1, 0.5, 0, 0, 0], atol=1e-6)


def test_erase_removes_what_earlier_shapes_painted():
    paint = Rect(0.0, 0.0, 1.0, 1.0)
    hole = Rect(0.0, 0.0, 0.5, 1.0, erase=True)
    got = rasterize(Mask((paint, hole)), 4, 4)
    np.testing.assert_array_equal(got, [[0, 0, 1, 1]] * 4)
    # erasing first and painting after leaves the paint
    np.testing.assert_array_equal(rasterize(Mask((hole, paint)), 4, 4), np.ones((4, 4)))


def test_placement_equals_moving_and_scaling_the_shapes():
    stroke = Stroke(((0.4, 0.4), (0.5, 0.45)), radius=0.05, softness=0.3)
    moved = rasterize(Mask((stroke,), dx=0.1, dy=-0.05), 128, 64)
    shifted = Stroke(((0.5, 0.35), (0.6, 0.4)), radius=0.05, softness=0.3)
    np.testing.assert_allclose(moved, rasterize(Mask((shifted,)), 128, 64), atol=1e-6)
    # scale 2 about (0.4, 0.4) doubles distances from there, radius included
    scaled = rasterize(Mask((stroke,), scale=2.0, cx=0.4, cy=0.4), 128, 64)
    grown = Stroke(((0.4, 0.4), (0.6, 0.5)), radius=0.1, softness=0.3)
    np.testing.assert_allclose(scaled, rasterize(Mask((grown,)), 128, 64), atol=1e-6)


def test_bitmap_resampling():
    values = np.zeros((4, 4), np.float32)
    values[1:3, 1:3] = 1.0
    # same size: identical
    np.testing.assert_allclose(rasterize(Mask((Bitmap(values),)), 4, 4), values, atol=1e-6)
    # 2x2: each pixel averages a quarter of the frame, holding one of the four lit cells
    np.testing.assert_allclose(rasterize(Mask((Bitmap(values),)), 2, 2), np.full((2, 2), 0.25),
                               atol=1e-6)
    # enlarging: bilinear between cell centres, so a smooth ramp and no blocks
    ramp = rasterize(Mask((Bitmap(np.array([[0.0, 1.0]], np.float32)),)), 1, 8)[0]
    np.testing.assert_allclose(ramp, [0, 0, 0.125, 0.375, 0.625, 0.875, 1, 1], atol=0.02)
    # moved out of the frame: nothing left
    assert rasterize(Mask((Bitmap(values),), dx=1.5), 4, 4).max() == 0.0


def test_empty_and_invalid_masks():
    assert rasterize(Mask(), 3, 5).shape == (3, 5)
    assert rasterize(Mask(), 3, 5).max() == 0
    with pytest.raises(MaskError, match="scale"):
        rasterize(Mask((Rect(0, 0, 1, 1),), scale=0.0), 4, 4)
