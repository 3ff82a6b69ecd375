"""The recipes and directions shipped beside the built-in model belong to it and do what they say."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganinterface import bundled
from ganinterface.engine.directions import load_direction, model_hash
from ganinterface.engine.masks import rasterize
from ganinterface.engine.renderer import Renderer
from ganinterface.engine.scene import Scene
from ganinterface.export.userfiles import read_direction, read_recipe
from ganinterface.models.loading import load_generator
from ganinterface.search.directions import JOINED, METHOD_FILES
from ganinterface.search.goals import GOALS
from ganinterface.search.metrics import dilate
from ganinterface.search.placement import LOCALITY_DILATION, placed_mask

DIRECTIONS = ("mouth-open", "hair-band")


@pytest.fixture(scope="module")
def builtin():
    generator = load_generator(None)
    return generator, model_hash(generator)


@pytest.mark.parametrize("goal", GOALS, ids=lambda g: g.stem)
def test_each_shipped_recipe_is_made_for_the_shipped_model(builtin, goal):
    generator, digest = builtin
    recipe = read_recipe(bundled.checkpoints_dir() / "recipes" / goal.file_name, digest)
    assert recipe.model_hash == digest, "recipe carries no model hash"
    assert recipe.name == goal.name
    layers = {layer.name for layer in generator.layers}
    assert recipe.edits and all(edit.layer in layers for edit in recipe.edits)
    assert all(edit.anchor is not None for edit in recipe.edits)
    assert recipe.provenance["goal"]["attribute"] == goal.attribute


def shipped_direction(stem):
    """The shipped direction's file: NAME.npy (a W direction), else NAME.json (style space)."""
    npy = bundled.checkpoints_dir() / "directions" / f"{stem}.npy"
    return npy if npy.exists() else npy.with_suffix(".json")


@pytest.mark.parametrize("stem", DIRECTIONS)
def test_each_shipped_direction_is_made_for_the_shipped_model_and_offered(builtin, stem):
    generator, digest = builtin
    direction = read_direction(shipped_direction(stem), generator, digest)
    assert direction.model_hash == digest
    assert direction.provenance["chosen_by"] in {*METHOD_FILES, JOINED}
    assert {"tuning", "held_out", "amounts"} <= set(direction.provenance)
    assert shipped_direction(stem) in bundled.shipped_directions()


def test_shipped_mouth_recipe_changes_pixels_mostly_where_its_mask_lands(builtin):
    """Pixel change measured here directly: the share of |after - before| inside the masks, placed
    where each layer's anchor puts them."""
    generator, digest = builtin
    recipe = read_recipe(bundled.checkpoints_dir() / "recipes" / "open-mouth.json", digest)
    placements = {(edit.mask, edit.anchor) for edit in recipe.edits}
    renderer = Renderer(generator, torch.device("cpu"))
    shares = []
    for seed in (11, 12, 13, 14):
        before = renderer.render(Scene(seed=seed)).image.astype(np.float64)
        after = renderer.render(recipe.applied_to(Scene(seed=seed))).image.astype(np.float64)
        change = np.abs(after - before).sum(axis=-1)
        assert change.sum() > 0, f"seed {seed}: the recipe changed nothing"
        region = np.zeros(change.shape, dtype=bool)
        for mask, anchor in placements:
            placed = placed_mask(renderer, Scene(seed=seed), mask, anchor)
            region |= rasterize(placed, *change.shape) > 0
        region = dilate(region, LOCALITY_DILATION)
        assert region.mean() < 0.15, "the mouth mask covers too much of the image"
        shares.append(change[region].sum() / change.sum())
    assert np.mean(shares) > 0.5


@pytest.mark.slow  # renders 60 seeds and their edits
def test_shipped_band_removal_fills_bands_with_hair_on_unseen_seeds(builtin):
    """On seeds no search used, portraits the classifier reads with a band mostly lose it, and the
    change stays where the recipe's placed masks are (measured here from the pixels)."""
    from ganinterface.demo.classifier import load_classifier

    generator, digest = builtin
    recipe = read_recipe(bundled.checkpoints_dir() / "recipes" / "remove-hair-band.json", digest)
    assert any(edit.kind == "feature_copy" for edit in recipe.edits)
    classifier = load_classifier()
    renderer = Renderer(generator, torch.device("cpu"))
    seeds = list(range(7000, 7060))
    before = np.stack([renderer.render(Scene(seed=s)).image for s in seeds])
    banded = [i for i, p in enumerate(classifier.classify(before)["hair_band"][:, 1]) if p >= 0.9]
    assert len(banded) >= 15
    after = np.stack([renderer.render(recipe.applied_to(Scene(seed=seeds[i]))).image for i in banded])
    removed = classifier.classify(after)["hair_band"][:, 1] < 0.5
    assert removed.mean() >= 0.75
    placements = {(edit.mask, edit.anchor) for edit in recipe.edits}
    shares = []
    for i, image in zip(banded, after):
        change = np.abs(image.astype(np.float64) - before[i]).sum(axis=-1)
        region = np.zeros(change.shape, dtype=bool)
        for mask, anchor in placements:
            region |= rasterize(placed_mask(renderer, Scene(seed=seeds[i]), mask, anchor), *change.shape) > 0
        shares.append(change[dilate(region, LOCALITY_DILATION)].sum() / change.sum())
    assert np.mean(shares) > 0.8


@pytest.mark.slow  # renders and classifies seeds with each direction and recipe
@pytest.mark.parametrize("stem, recipe_file, attribute, amount", [
    ("mouth-open", "open-mouth.json", "mouth_open", 1.0),
    ("hair-band", "add-hair-band.json", "hair_band", 1.5),
])
def test_mean_difference_directions_change_the_whole_portrait_and_are_not_offered(
        builtin, stem, recipe_file, attribute, amount):
    """At the amount that flips as many portraits as its recipe does (the edit report's match), the
    mean-difference direction's pixel change falls mostly outside the recipe's placed masks and
    other attributes change with it (measured here): kept for the edit report's comparison of
    methods, not offered as an edit."""
    from ganinterface.demo.classifier import load_classifier
    from ganinterface.search.metrics import locality, preservation

    generator, digest = builtin
    recipe = read_recipe(bundled.checkpoints_dir() / "recipes" / recipe_file, digest)
    direction = load_direction(bundled.checkpoints_dir() / "directions" / "methods"
                               / f"{stem}.mean-difference.npy", model_hash=digest)
    renderer = Renderer(generator, torch.device("cpu"))
    seeds = list(range(300, 330))
    before = np.stack([renderer.render(Scene(seed=s)).image for s in seeds])
    after = np.stack([renderer.render(Scene(seed=s, edits=(direction.to_edit(amount),))).image
                      for s in seeds])
    shares = []
    for seed, image_before, image_after in zip(seeds, before, after):
        region = np.zeros(image_before.shape[:2], dtype=bool)
        for edit in recipe.edits:
            placed = placed_mask(renderer, Scene(seed=seed), edit.mask, edit.anchor)
            region |= rasterize(placed, *region.shape) > 0
        shares.append(locality(image_before, image_after, dilate(region, LOCALITY_DILATION)))
    classifier = load_classifier()
    read_before, read_after = ({k: v.argmax(axis=1) for k, v in classifier.classify(images).items()}
                               for images in (before, after))
    assert np.mean(shares) < 0.35
    assert preservation(read_before, read_after, attribute) < 0.8
    assert all("methods" not in path.parts for path in bundled.shipped_directions())


@pytest.mark.slow  # renders 40 seeds and two recipes' edits
def test_shipped_recipes_leave_no_skin_patch_or_seam_on_unseen_seeds(builtin):
    """Close mouth on the darkest skin tone the classifier reads, and remove hair band on the
    portraits read with a band: the mean colour change of the skin inside the mask and the step
    along the removed band's edges stay near what the eye notices (loose: the aim is 3 dE2000)."""
    from ganinterface.demo.classifier import load_classifier
    from ganinterface.search.metrics import seam, skin_patch

    generator, digest = builtin
    classifier = load_classifier()
    renderer = Renderer(generator, torch.device("cpu"))
    seeds = list(range(7100, 7140))
    before = np.stack([renderer.render(Scene(seed=s)).image for s in seeds])
    read = {k: v.argmax(axis=1) for k, v in classifier.classify(before).items()}
    chosen = {"close-mouth.json": (skin_patch, read["skin_tone"] == classifier.attributes["skin_tone"].index("brown")),
              "remove-hair-band.json": (seam, read["hair_band"] == 1)}
    for name, (measure, picked) in chosen.items():
        recipe = read_recipe(bundled.checkpoints_dir() / "recipes" / name, digest)
        assert picked.sum() >= 5, name
        values = []
        for i in np.flatnonzero(picked):
            after = renderer.render(recipe.applied_to(Scene(seed=seeds[i]))).image
            region = np.zeros(after.shape[:2], dtype=bool)
            for edit in recipe.edits:
                placed = placed_mask(renderer, Scene(seed=seeds[i]), edit.mask, edit.anchor)
                region |= rasterize(placed, *after.shape[:2]) > 0
            values.append(measure(before[i], after, dilate(region, LOCALITY_DILATION)))
        assert np.nanmean(values) < 4.5, (name, values)
