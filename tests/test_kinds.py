"""The edit kinds' registry and what each kind tells the edit stack, without a window."""

import dataclasses

import numpy as np
import pytest

from ganinterface.engine.kinds import (KINDS, DirectionEdit, FeatureCopy, FeatureEdit, RegionResample,
                                       StyleChannelEdit, StyleMix, kind_of)
from ganinterface.engine.kinds.feature import format_channels, parse_channels
from ganinterface.engine.scene import Anchor, Mask, Recipe, Rect

MASK = Mask((Rect(0.1, 0.2, 0.5, 0.6),))
ANCHOR = Anchor("b8.conv0", (1,), 0.5, 0.5)
ONE_OF_EACH = (
    FeatureEdit("b8.conv1", (3, 4, 5, 9), MASK, -1.5, anchor=ANCHOR, name="smile"),
    FeatureCopy("b16.conv0", MASK, scale=0.7, amount=0.8),
    DirectionEdit(np.ones(8), 2.0, first=2),
    StyleMix(seed=9, first=4, last=6, name="style of 9"),
    RegionResample("b16.conv0", MASK, seed=3),
    StyleChannelEdit((("b8.conv1", 3, 0.5), ("b16.conv0", 7, -1.0), ("b8.conv1", 4, 2.0)), 1.5,
                     name="open"),
)


def test_every_kind_is_registered_under_the_name_its_files_use():
    assert {type(edit) for edit in ONE_OF_EACH} == {kind.edit_type for kind in KINDS.values()}
    for name, kind in KINDS.items():
        assert kind.name == name == kind.edit_type.kind


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_reads_every_field_it_has(kind):
    fields = {f.name for f in dataclasses.fields(KINDS[kind].edit_type)}
    assert set(KINDS[kind].readers) == fields - {"enabled", "name"}


def test_each_kind_describes_its_edits_in_one_line():
    lines = [kind_of(edit).describe(edit) for edit in ONE_OF_EACH]
    assert lines == ["“smile” Paint b8.conv1  channels 3-5, 9  -1.50  ⚓",
                     "Fill b16.conv0 from ×0.7  0.80",
                     "Direction +2.00  ws 2–end",
                     "“style of 9” Style mix from seed 9  ws 4–6",
                     "Resample b16.conv0 from seed 3",
                     "“open” Style channels +1.50  3 channels in b8.conv1, b16.conv0"]


def test_a_recipes_strength_scales_the_kinds_that_have_one():
    scaled = Recipe(edits=ONE_OF_EACH).scaled(0.5).edits
    assert [getattr(edit, "amount", None) for edit in scaled] == [-0.75, 0.4, 1.0, None, None, 0.75]
    assert scaled[3:5] == ONE_OF_EACH[3:5]


def test_what_the_edit_stack_may_change_on_each_kind():
    def kinds_that(capability):
        return {name for name, kind in KINDS.items() if getattr(kind, capability)}

    assert kinds_that("has_strength") == {"feature", "feature_copy", "direction", "style_channels"}
    assert kinds_that("has_channels") == {"feature"}
    assert kinds_that("has_fill_scale") == {"feature_copy"}
    assert kinds_that("redraws_seed") == {"region_resample"}
    assert kinds_that("can_keep_rest") == {"feature", "feature_copy", "region_resample"}
    assert "copied features" in KINDS["feature_copy"].strength_tip


def test_edits_of_some_rows_of_ws_make_a_w_latent_w_plus():
    made = {edit.kind: kind_of(edit).makes_w_plus(edit) for edit in ONE_OF_EACH}
    assert made == {"feature": False, "feature_copy": False, "direction": True, "style_mix": True,
                    "region_resample": False, "style_channels": False}
    assert not kind_of(ONE_OF_EACH[2]).makes_w_plus(DirectionEdit(np.ones(8), 2.0))


def test_where_each_kind_edits():
    assert [kind_of(e).layer(e) for e in ONE_OF_EACH] == ["b8.conv1", "b16.conv0", None, None,
                                                          "b16.conv0", None]
    assert [kind_of(e).anchor(e) for e in ONE_OF_EACH] == [ANCHOR, None, None, None, None, None]
    assert [kind_of(e).mask(e) is MASK for e in ONE_OF_EACH] == [True, True, False, False, True, False]


def test_channel_lists_are_typed_and_shown_as_ranges():
    assert format_channels((9, 1, 2, 3, 7)) == "1-3, 7, 9"
    assert parse_channels("1-3, 7", 8) == (1, 2, 3, 7)
    with pytest.raises(ValueError, match="channel 8 is out of range"):
        parse_channels("2, 8", 8)
