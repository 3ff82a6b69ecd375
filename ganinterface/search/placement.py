"""Where an (anchored) edit's mask lands on each portrait, and the regions its change is scored in."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from ganinterface.engine.analysis import follow_anchor
from ganinterface.engine.kinds import Edit, kind_of
from ganinterface.engine.masks import rasterize
from ganinterface.engine.renderer import Renderer
from ganinterface.engine.scene import Anchor, Mask, Recipe, Scene
from ganinterface.search.metrics import dilate
from ganinterface.search.samples import Samples

LOCALITY_DILATION = 3  # pixels, at the image's resolution, as the edit report scores them


def placed_masks(samples: Samples, mask: Mask, anchor: Anchor | None) -> list[Mask]:
    """``mask`` where the (anchored) edit puts it on each sample (anchors read unedited features)."""
    if anchor is None:
        return [mask] * len(samples.seeds)
    info = samples.layers[anchor.layer]
    return [follow_anchor(mask, anchor, features, info) for features in samples.features[anchor.layer]]


def placed_rasters(samples: Samples, layer: str, mask: Mask, anchor: Anchor | None) -> np.ndarray:
    """(N, h, w): ``mask`` at ``layer``'s resolution where the (anchored) edit puts it on each sample."""
    height, width = samples.features[layer].shape[2:]
    return np.stack([rasterize(placed, height, width) for placed in placed_masks(samples, mask, anchor)])


def placed_mask(renderer: Renderer, scene: Scene, mask: Mask, anchor: Anchor | None) -> Mask:
    """The mask where an (anchored) edit puts it on this scene's portrait."""
    if anchor is None:
        return mask
    result = renderer.render(scene, [anchor.layer])
    if result.error:
        raise ValueError(result.error)
    info = renderer.generator.layers[renderer.generator.layer_index(anchor.layer)]
    return follow_anchor(mask, anchor, result.features[anchor.layer], info)


def recipe_placements(recipe: Recipe) -> list[tuple[Mask, Anchor | None]]:
    """The distinct (mask, anchor) pairs of a recipe's edits with a mask: one per layer it edits."""
    placements: list[tuple[Mask, Anchor | None]] = []
    for edit in recipe.edits:
        kind = kind_of(edit)
        placement = (kind.mask(edit), kind.anchor(edit))
        if placement[0] is not None and placement not in placements:
            placements.append(placement)
    return placements


def reanchored(recipe: Recipe, anchor_for: Callable[[Anchor], Anchor | None]) -> Recipe:
    """``recipe`` with the anchor of each anchored edit replaced by ``anchor_for(anchor)``."""
    def edit(e: Edit) -> Edit:
        anchor = kind_of(e).anchor(e)
        return e if anchor is None else dataclasses.replace(e, anchor=anchor_for(anchor))

    return dataclasses.replace(recipe, edits=tuple(edit(e) for e in recipe.edits))


def scoring_regions(renderer: Renderer, scenes: Sequence[Scene],
                    placements: Sequence[tuple[Mask, Anchor | None]], height: int,
                    width: int) -> list[np.ndarray]:
    """Where the edits land on each scene's portrait (the union over ``placements``, dilated as the
    edit report scores it)."""
    regions = []
    for scene in scenes:
        covered = np.zeros((height, width), dtype=bool)
        for mask, anchor in placements:
            covered |= rasterize(placed_mask(renderer, scene, mask, anchor), height, width) > 0
        regions.append(dilate(covered, LOCALITY_DILATION))
    return regions
