"""The crop frame a user places on a picture: the default, moves, resizes, whole-pixel boxes."""

from __future__ import annotations

import types

import numpy as np
import pytest

from ganinterface.engine.crop_frame import CropFrame
from ganinterface.engine.projection import check_crop

TALL = (64, 128)  # the built-in model's images: 64 wide, 128 high
WIDE = (256, 128)


def test_the_default_is_the_largest_centred_box():
    assert CropFrame.largest(300, 500, TALL).box() == (25, 0, 275, 500)
    assert CropFrame.largest(300, 300, WIDE).box() == (0, 75, 300, 225)


def test_a_move_stops_at_the_pictures_edges():
    frame = CropFrame.largest(300, 500, TALL)
    assert frame.moved(10, 0).box() == (35, 0, 285, 500)
    assert frame.moved(-100, 10).box() == (0, 0, 250, 500)
    assert frame.moved(100, 0).box() == (50, 0, 300, 500)


def test_scaling_keeps_the_point_under_the_wheel_and_stays_within_the_smallest_and_largest_box():
    frame = CropFrame.largest(400, 400, TALL)  # 200 x 400 from x = 100
    assert frame.scaled(0.5, about=(100, 0)).box() == (100, 0, 200, 200)
    assert frame.scaled(0.5).box() == (150, 100, 250, 300)  # about the centre (200, 200)
    assert frame.scaled(10) == frame
    assert frame.scaled(0.001).box() == (192, 184, 208, 216)  # 16 px on the shorter side


def test_a_corner_drag_keeps_the_opposite_corner_and_the_aspect():
    frame = CropFrame.largest(400, 400, TALL)
    # towards the lower right from the top-left corner: 300 px asked, 200 x 400 fit
    assert frame.resized((100, 0), (400, 150)).box() == (100, 0, 300, 400)
    # towards the upper left from the bottom-right corner: the larger distance (100 px down = 50 wide)
    assert frame.resized((300, 400), (280, 300)).box() == (250, 300, 300, 400)
    assert frame.opposite("bottom-left") == (300.0, 0.0)


def test_a_corner_dragged_across_to_an_edge_without_room_keeps_the_box_on_the_other_side():
    frame = CropFrame.largest(400, 400, TALL).moved(-100, 0)  # 0..200 x 0..400
    # the bottom-right corner dragged left past the top-left one, which sits on the left edge
    assert frame.resized((0, 0), (-50, 40)).box() == (0, 0, 50, 100)  # 50 px across asked
    assert frame.resized((0, 0), (-5, -10)).box() == (0, 0, 16, 32)  # up and left, a little: the smallest box


def test_whole_pixel_boxes_keep_the_aspect_within_a_pixel():
    rng = np.random.default_rng(0)
    for aspect in (TALL, WIDE, (3, 2)):
        model = types.SimpleNamespace(img_width=aspect[0], img_height=aspect[1])
        for _ in range(200):
            width, height = (int(v) for v in rng.integers(20, 900, 2))
            frame = CropFrame.largest(width, height, aspect).scaled(rng.uniform(0.1, 1.0),
                                                                     about=tuple(rng.uniform(0, 900, 2)))
            check_crop(frame.box(), width, height, model)  # raises if outside or off the aspect


def test_an_empty_picture_is_refused():
    from ganinterface.engine.projection import ProjectionError

    with pytest.raises(ProjectionError, match="empty"):
        CropFrame.largest(0, 10, TALL)
