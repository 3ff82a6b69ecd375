"""Where the Fill tool copies from, checked on pictures whose best source is known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from ganinterface.engine.fill import FillError, find_fill_source

BOX = (24 / 64, 20 / 64, 32 / 64, 28 / 64)  # pixels x 24..32, y 20..28: 8 x 8, a 4-pixel ring


def grey_field() -> np.ndarray:
    """White, with a grey area x 12..44, y 12..60 and a small red object inside BOX."""
    image = np.full((64, 64, 3), 255, np.uint8)
    image[12:60, 12:44] = 100
    image[22:26, 26:30] = (220, 20, 20)
    return image


def test_the_source_is_where_surroundings_and_content_both_match():
    # Above, the ring of a shifted box reaches the white; left and right reach the white columns;
    # 13 pixels below (1.6 box heights) everything is grey: a perfect match, nothing to pay.
    source = find_fill_source(grey_field(), BOX)
    assert source.side == "below it"
    assert source.offset == pytest.approx((0.0, 13 / 64))
    assert source.mismatch == 0.0


def test_a_source_with_the_object_it_should_remove_is_not_chosen():
    image = grey_field()
    image[35:39, 26:30] = (220, 20, 20)  # a second object just where "below" would copy from
    image[5:12, 12:44] = 100  # ... while above is now all grey as well
    assert find_fill_source(image, BOX).side == "above it"


def test_no_room_around_the_box_is_an_error_saying_what_to_do():
    with pytest.raises(FillError, match="draw it smaller"):
        find_fill_source(grey_field(), (0.02, 0.02, 0.98, 0.98))
