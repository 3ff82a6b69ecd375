"""Recipes that follow each portrait's loudness: the levels recorded from samples' features."""

import dataclasses

import numpy as np
import pytest

from ganinterface.engine.kinds import FeatureCopy, FeatureEdit
from ganinterface.engine.scene import Mask, Recipe, Rect
from ganinterface.search.levels import has_levels, with_levels
from ganinterface.search.samples import Samples

MASK = Mask((Rect(0.2, 0.2, 0.6, 0.5),))


def _samples() -> Samples:
    random = np.random.default_rng(5)
    features = {"b32.conv0": random.normal(size=(6, 8, 4, 2)).astype(np.float32) * np.arange(1, 9)[None, :, None, None],
                "b16.conv1": random.normal(size=(6, 4, 2, 1)).astype(np.float32)}
    return Samples(seeds=list(range(40, 46)), ws=np.zeros((6, 4, 8), np.float32),
                   images=np.zeros((6, 8, 4, 3), np.uint8), probabilities={}, features=features, layers={})


def test_each_feature_edit_records_its_channels_mean_level_on_the_samples():
    samples = _samples()
    recipe = Recipe(edits=(FeatureEdit("b32.conv0", (2, 7), MASK, 1.5),
                           FeatureEdit("b16.conv1", (0,), MASK, -0.5),
                           FeatureEdit("b64.conv0", (1,), MASK, 0.5),  # a layer the samples lack
                           FeatureCopy("b32.conv0", MASK, scale=0.8)),
                    name="band", provenance={"goal": "add hair band"})
    levelled = with_levels(recipe, samples, floor=1.0)
    features = samples.features["b32.conv0"]
    by_hand = np.mean([abs(float(v)) for v in features[:, [2, 7]].ravel()])
    assert levelled.edits[0].level == pytest.approx(by_hand, rel=1e-6)
    assert levelled.edits[1].level == pytest.approx(np.abs(samples.features["b16.conv1"][:, 0]).mean(), rel=1e-6)
    assert all(e.level_floor == 1.0 for e in levelled.edits[:2])
    assert levelled.edits[2:] == recipe.edits[2:]
    assert [dataclasses.replace(e, level=None, level_floor=0.0) for e in levelled.edits[:2]] == list(recipe.edits[:2])
    assert levelled.provenance == {"goal": "add hair band",
                                   "levels": {"floor": 1.0, "samples": 6, "seeds": "40-45", "figures":
                                              "the search's figures above were measured before the "
                                              "levels were recorded"}}
    assert has_levels(levelled) and not has_levels(recipe)
