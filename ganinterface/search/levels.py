"""Recipes whose amounts follow each portrait's loudness (``FeatureEdit.level``).

A recipe's amounts are found on the generator's samples. A projected picture's features are often
louder in the channels a recipe paints (1.3-5 times a sample's mean in some of the hair band's), so
a fixed amount changes it less. ``with_levels`` records, for each painted channel set, its mean
|activation| on the samples; the renderer then scales each portrait's amount by its own level over
that one.
"""

from __future__ import annotations

import dataclasses

import torch

from ganinterface.engine.kinds.base import channel_runs
from ganinterface.engine.kinds.feature import FeatureEdit, channel_level
from ganinterface.engine.scene import Recipe
from ganinterface.search.samples import Samples

# The shipped recipes that follow the level, with the least factor a portrait's amount may get
# (measured on samples 3000-3199 and projections of procedural renders 6000-6039, checked on samples
# 2000000-2000199 and projections 6040-6119; docs/projection-report.md). "add hair band" never
# paints weaker than found: scaled down on portraits quieter than the samples' mean, it added a band
# to 94% of samples instead of 99%. "open mouth" does not follow: a stronger mouth edit smears, and
# scaled by level it opened 4-10 points more projections but up to 4 points fewer samples.
LEVEL_FLOORS = {"add hair band": 1.0}


def samples_level(samples: Samples, layer: str, channels: tuple[int, ...]) -> float:
    """The channels' mean |activation| over their whole maps (``feature.channel_level``), averaged
    over ``samples``."""
    features = torch.from_numpy(samples.features[layer])
    return channel_level(features, channel_runs(sorted(set(channels)))).double().mean().item()


def with_levels(recipe: Recipe, samples: Samples, floor: float) -> Recipe:
    """``recipe`` with a level on each feature edit of a layer ``samples`` hold, and
    ``level_floor`` ``floor``; other edits unchanged."""
    def levelled(edit):
        if not isinstance(edit, FeatureEdit) or edit.layer not in samples.features or not edit.channels:
            return edit
        level = samples_level(samples, edit.layer, edit.channels)
        return dataclasses.replace(edit, level=level, level_floor=floor) if level > 0 else edit

    provenance = {**recipe.provenance, "levels": {
        "floor": floor, "samples": len(samples.seeds),
        "seeds": f"{samples.seeds[0]}-{samples.seeds[-1]}" if samples.seeds else "",
        "figures": "the search's figures above were measured before the levels were recorded"}}
    return dataclasses.replace(recipe, edits=tuple(levelled(e) for e in recipe.edits),
                               provenance=provenance)


def has_levels(recipe: Recipe) -> bool:
    return any(isinstance(e, FeatureEdit) and e.level is not None for e in recipe.edits)
