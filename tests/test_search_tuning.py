"""The search's batched renders (TuningRenderer) against the Renderer, one scene at a time, for every
kind of edit: both apply the kinds' code, through different contexts (stored sample features or the
renderer's cache for anchors, batches or one scene)."""

import numpy as np
import pytest

from ganinterface.engine.kinds import (KINDS, DirectionEdit, FeatureCopy, FeatureEdit, RegionResample,
                                       StyleChannelEdit, StyleMix)
from ganinterface.engine.renderer import Renderer
from ganinterface.engine.scene import Anchor, Mask, Recipe, Rect, Scene, Stroke
from ganinterface.search.samples import draw_samples
from ganinterface.search.tuning import TuningRenderer
from tiny_models import tiny_stylegan2

SEEDS = list(range(20, 27))
DRAWN = ["b8.conv0", "b8.conv1"]  # the anchors' layers: their features are drawn with the samples


class Blind:
    """Reads nothing: tuning renders need samples, not what a classifier says about them."""

    def classify(self, images):
        return {}


def recipes():
    mask = Mask((Stroke(((0.3, 0.4), (0.6, 0.55)), radius=0.2, softness=0.5),))
    box = Mask((Rect(0.1, 0.5, 0.9, 0.9, softness=0.3),))
    anchor = Anchor("b8.conv1", (3, 1), 0.5, 0.5, spread=0.1, follow_scale=True)
    direction = np.random.default_rng(2).normal(size=8).astype(np.float32)
    return {
        "feature": (FeatureEdit("b16.conv0", (0, 2), mask, 1.5, anchor=anchor),
                    FeatureEdit("b16.conv0", (2,), box, -0.8)),
        "feature_copy": (FeatureCopy("b16.conv0", box, scale=0.6, centre=(0.5, 0.8), amount=0.9,
                                     anchor=Anchor("b8.conv0", (0,), 0.5, 0.5)),),
        "direction": (DirectionEdit(direction, 2.0, first=1, last=4),),
        "style_mix": (StyleMix(seed=3, first=3),),
        "region_resample": (RegionResample("b8.conv1", box, seed=5),),
        "style_channels": (StyleChannelEdit((("b8.conv1", 2, 1.5), ("b16.torgb", 0, -0.7)), 1.2),),
        # a move of ws before an anchored edit: the anchor reads the moved latent's features
        "direction, then anchored paint and fill": (
            DirectionEdit(direction, -1.5),
            FeatureEdit("b16.conv1", (1,), mask, 2.0, anchor=anchor),
            FeatureCopy("b16.conv1", mask, scale=0.7, anchor=anchor),
            FeatureEdit("b16.conv1", (1, 3), box, 0.5)),
        # the rest of the picture kept: blended into the render without those edits
        "paint and fill keeping the rest": (
            FeatureEdit("b16.conv0", (0, 2), mask, 1.5, anchor=anchor, keep_rest=True),
            FeatureCopy("b16.conv1", box, scale=0.6, amount=0.9, keep_rest=True)),
        "direction, then anchored paint keeping the rest, and paint": (
            DirectionEdit(direction, -1.5),
            FeatureEdit("b16.conv1", (1,), mask, 2.0, anchor=anchor, keep_rest=True),
            FeatureEdit("b16.conv1", (1, 3), box, 0.5)),
    }


@pytest.fixture(scope="module")
def generator():
    return tiny_stylegan2()


@pytest.fixture(scope="module")
def single(generator):
    """Every recipe rendered by the Renderer, one scene at a time."""
    renderer = Renderer(generator, "cpu")
    return {name: np.stack([renderer.render(Scene(seed=s, edits=edits)).image for s in SEEDS])
            for name, edits in recipes().items()}


def test_every_kind_is_compared():
    assert {edit.kind for edits in recipes().values() for edit in edits} == set(KINDS)


@pytest.mark.parametrize("name", list(recipes()))
def test_one_sample_at_a_time_the_batched_path_draws_the_renderers_pixels(generator, single, name):
    samples = draw_samples(generator, Blind(), SEEDS, DRAWN, batch=1)
    tuned = TuningRenderer(generator, samples, batch=1).images(Recipe(edits=recipes()[name]))
    np.testing.assert_array_equal(tuned, single[name])
    assert (tuned != samples.images).any(), "the recipe changed nothing"


@pytest.mark.parametrize("name", list(recipes()))
def test_in_batches_the_pixels_differ_by_the_rounding_of_batched_convolutions_at_most(generator, single,
                                                                                       name):
    samples = draw_samples(generator, Blind(), SEEDS, DRAWN, batch=3)
    tuned = TuningRenderer(generator, samples, batch=3).images(Recipe(edits=recipes()[name])).astype(int)
    assert np.abs(tuned - single[name]).max() <= 1
    assert np.mean(tuned == single[name]) > 0.99
