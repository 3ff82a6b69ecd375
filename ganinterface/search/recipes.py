"""The recipe search: for a goal (open the mouth, remove the hair band...), the feature edits that
reach it on classifier-labelled samples, placed by anchors, with the layer, channel count and strength
chosen on tuning samples by their margin to the goal's aims.

For each candidate layer, an anchor (the channels most specific to the feature's region,
``rank_channels``) moves a small mask, where the renderer puts that feature on average, to the
feature on each portrait; the channels whose mean under that placed mask differs most between
samples with and without the feature (``engine.analysis.propose_feature_edit``) become per-channel
FeatureEdits of that difference.  Then a second layer's edits are tried on top of the best one's,
and anchors that look for their peak only near their place.  For removals marked ``fill`` (the hair
band), copies of the portrait's own features over the feature's footprint from nearer a centre
(``FeatureCopy``), on runs of layers, are tried beside the single layers.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from ganinterface.demo.classifier import AttributeClassifier
from ganinterface.engine.analysis import locate_peak, propose_feature_edit, rank_channels
from ganinterface.engine.directions import model_hash
from ganinterface.engine.kinds import FeatureCopy, FeatureEdit
from ganinterface.engine.masks import rasterize
from ganinterface.engine.scene import Anchor, Mask, Recipe, Rect
from ganinterface.models.base import GeneratorBase
from ganinterface.search.goals import EditGoal
from ganinterface.search.placement import placed_rasters, reanchored, recipe_placements
from ganinterface.search.priors import FOOTPRINT_FLOOR, FOOTPRINT_FULL, footprint_mask, region_prior
from ganinterface.search.samples import Samples
from ganinterface.search.trials import Trial, choice_key, figures_text, try_recipe
from ganinterface.search.tuning import TuningRenderer

Report = Callable[[str], None]

# Tried in order until the flip rate reaches TARGET_FLIP.  Strength 1 moves the features under the
# placed mask from one class's mean to the other's; from ~3 times that the generator no longer draws
# the feature but paints over it (rainbow blots on a mouth, a striped box for a hair band) that can
# fool the classifier, so the ladder stops at 2.
STRENGTHS = (1.0, 1.5, 2.0)
# Channels per edit, fewest first: more channels are tried only where fewer cannot flip (128 is
# every channel of the built-in model's layers: the whole class difference under the mask).
TOP_KS = (16, 64, 128)
TARGET_FLIP = 0.95
# Tried last on the chosen recipe: its anchors look for their peak only this near (image heights) to
# where they found it on average, so a brighter spot elsewhere (a chin line) cannot carry a mouth
# edit off the mouth.  The best of them on the tuning seeds is always kept: "open mouth" without a
# reach (its margin on samples no wider with one) carried its mask onto the fringe of a projected
# picture whose detail map lit the mouth channels there, and opened 71% of 31 projections' mouths
# (within 0.1: 90%).
REACHES = (0.1, 0.15, 0.2)
# Tried after the reaches: the chosen recipe's additions this many times as strong, e.g. a layer
# chosen at strength 2 at 2.5, between the ladder's top and where the generator paints over the
# feature (~3).  A band added at 2 on b32.conv0 flipped 94% of tuning bands, at 2.5 98% with the
# same locality and preservation.  Kept only where it widens the margin to the aims.
STRONGER = (1.25,)
# Tried last: the chosen recipe keeping the rest of the picture (``keep_rest``: outside its masks,
# grown and feathered a little, the picture is the unedited one), as it is and with its additions
# stronger, since change spilling outside the mask no longer costs locality.  Kept where it widens
# the margin: on the tuning seeds "add hair band" with its additions x1.25 went from 90% of its
# change inside the mask to all of it (flip 99 -> 100%, kept 98.2 -> 98.8%), "close mouth" left a
# fainter skin patch (1.6 -> 1.3), "open mouth" kept 99.5% of its change inside the mask (92.7%);
# where a band was removed the seam grew a little (5.3 -> 5.4), and that recipe does not keep it.
REST_FACTORS = (1.0, 1.25)
# A fixed addition paints the mean features of the other class: hair of an average colour over a
# hair band, so on red or blue hair a stripe stays (58% of bands removed on seeds 0-199).  A copy of
# the portrait's own features from nearer the centre (FeatureCopy, scale < 1 about a point low in
# the band's box, over the band's footprint) fills the band with the hair it lies on.  Tried for
# goals with ``fill``; a mouth closed by copying the skin around it flipped only ~65% (the chin and
# nose lines come along), so not there.
FILL_SCALES = (0.6, 0.7, 0.8)
FILL_CENTRES = (0.5, 1.0)  # the copy's centre: half-way down the mask's box, or at its bottom edge
# A fixed addition paints the other class's mean features, skin of an average tone where a mouth
# closes: a lighter patch on brown skin (7 dE2000 on the tuning seeds).  For goals whose artefact
# is a skin patch, copies of the portrait's own features from just above the mask (between nose
# and mouth) over it, on the finest layers, are tried on top of the chosen recipe: 2 dE2000 from
# the finest candidate layer up, 3 from the full-resolution layers alone.
COVER_OFFSETS = (-0.03, -0.045)  # image heights above the mask that the copy takes from
# The additions kept under a cover (0: the cover alone).  On the built-in model the cover alone closes
# every mouth (flip 100%, locality 99.8% on seeds 5000-5399) and changes the classifier's other
# readings less than with the additions under it (preservation 98.9% against 98.4%).
COVER_ADDITIONS = (1.0, 0.5, 0.0)
# The cover's edges: at the additions' 0.3 the copied square's edges and streaks showed on light
# skin; 0.6 hides them with the skin patch still under 3 on every tone (chosen by eye on tuning seeds).
COVER_SOFTNESS = 0.6


def candidate_layers(generator: GeneratorBase) -> list[str]:
    """Convolution layers at 1/8 to 1/2 of the image height: coarse ones carry a whole hair band,
    the finest ones draw a mouth (on the 128x64 model a mouth spans about two pixels at 1/4)."""
    height = generator.img_height
    return [layer.name for layer in generator.layers
            if layer.kind == "conv" and height // 8 <= layer.height <= height // 2]


def find_anchor(samples: Samples, layer: str, region: Rect, count: int = 3) -> Anchor:
    """Channels most specific to the region over all samples; the anchor sits at their mean peak."""
    features = samples.features[layer]
    raster = rasterize(Mask((region,)), *features.shape[2:])
    channels = tuple(score.channel for score in rank_channels(features, raster)[:count])
    peaks = [locate_peak(f[list(channels)].mean(axis=0)) for f in features]
    return Anchor(layer=layer, channels=channels, x=float(np.mean([p.x for p in peaks])),
                  y=float(np.mean([p.y for p in peaks])), spread=float(np.mean([p.spread for p in peaks])))


def propose_recipe(samples: Samples, goal: EditGoal, layer: str, mask: Mask, anchor: Anchor | None,
                   top_k: int = 8, strength: float = 1.0, placed: np.ndarray | None = None) -> Recipe:
    """Per-channel edits of the top_k channels by the class difference inside the mask, measured
    where the edit lands on each sample (``placed``, from ``placed_rasters``), times ``strength``."""
    if placed is None:
        placed = placed_rasters(samples, layer, mask, anchor)
    on_layer = placed.sum(axis=(1, 2)) > 0  # an anchor near the border can push the mask off the map
    reached = [i for i in samples.with_state(goal.attribute, goal.target) if on_layer[i]]
    other = [i for i in samples.with_state(goal.attribute, 1 - goal.target) if on_layer[i]]
    if len(reached) < 2 or len(other) < 2:
        raise ValueError(f"{goal.name}: too few confidently classified samples "
                         f"({len(reached)} in the target state, {len(other)} not)")
    features = samples.features[layer]
    regions = np.concatenate([placed[reached], placed[other]])
    proposal = propose_feature_edit(features[reached], features[other], regions, top_k=top_k)
    edits = proposal.to_edits(layer, mask, strength=strength, per_channel=True, name=goal.name)
    edits = tuple(dataclasses.replace(e, anchor=anchor) for e in edits)
    return Recipe(edits=edits, name=goal.name)


def cover_layers(generator: GeneratorBase) -> list[str]:
    """The finest candidate layer and the convolution layers above it (those at full resolution)."""
    finest = candidate_layers(generator)[-1]
    after = generator.layers[generator.layer_index(finest) + 1:]
    return [finest] + [layer.name for layer in after if layer.kind == "conv"]


def cover_recipe(recipe: Recipe, layers: Sequence[str], offset: float, additions: float = 1.0) -> Recipe:
    """``recipe``'s additions ``additions`` times as strong (left out at 0) plus FeatureCopy edits on
    ``layers`` over its first edit's mask (edges COVER_SOFTNESS soft), placed by its anchor, that take
    the portrait's own features from ``offset`` image heights below (above if negative)."""
    first = recipe.edits[0]
    mask = Mask(tuple(dataclasses.replace(shape, softness=COVER_SOFTNESS) for shape in first.mask.shapes))
    copies = tuple(FeatureCopy(layer, mask, offset=(0.0, offset), anchor=first.anchor, name=recipe.name)
                   for layer in layers)
    kept = with_additions_scaled(recipe, additions).edits if additions else ()
    return dataclasses.replace(recipe, edits=kept + copies)


def fill_layer_groups(layers: Sequence[str], heights: Sequence[int]) -> list[tuple[str, ...]]:
    """The layers of each run of consecutive resolutions (one, two, ... all of them)."""
    resolutions = sorted(set(heights))
    groups = []
    for i, low in enumerate(resolutions):
        for high in resolutions[i:]:
            groups.append(tuple(layer for layer, h in zip(layers, heights) if low <= h <= high))
    return groups


def fill_recipe(goal: EditGoal, layers: Sequence[str], mask: Mask, box: Rect, anchor: Anchor | None,
                scale: float, centre: float) -> Recipe:
    """FeatureCopy edits on ``layers``, all placed by one anchor, that fill the mask with the
    features ``scale`` times as far from a point ``centre`` of the way down ``box``."""
    point = ((box.x0 + box.x1) / 2, box.y0 + centre * (box.y1 - box.y0))
    return Recipe(edits=tuple(FeatureCopy(layer, mask, scale, point, anchor=anchor, name=goal.name)
                              for layer in layers), name=goal.name)


@dataclasses.dataclass(frozen=True, eq=False)
class _LayerPlan:
    """What a layer's trials share: its anchor, where the mask lands on the finding samples, and
    where it lands on the tuning samples (scoring regions)."""

    anchor: Anchor
    placed: np.ndarray
    regions: list[np.ndarray]


def _layer_trials(tuner: TuningRenderer, classifier: AttributeClassifier, samples: Samples,
                  goal: EditGoal, layer: str, mask: Mask, plan: _LayerPlan,
                  top_ks: Sequence[int], strengths: Sequence[float],
                  base: Trial | None = None) -> Iterator[Trial]:
    """One layer's settings (on top of ``base``'s edits, if given), fewest channels and weakest
    first, up to the first that flips: more channels or strength beyond it only disturb more."""
    anchor, placed, regions = plan.anchor, plan.placed, plan.regions
    if base is not None:
        regions = [mine | theirs for mine, theirs in zip(regions, base.regions)]
    channels = samples.features[layer].shape[1]
    for top_k in sorted({min(k, channels) for k in top_ks}):
        for strength in strengths:
            recipe = propose_recipe(samples, goal, layer, mask, anchor, top_k, strength, placed)
            if base is not None:
                recipe = dataclasses.replace(recipe, edits=base.recipe.edits + recipe.edits)
            figures = try_recipe(tuner, classifier, recipe, goal, regions)
            yield Trial(figures, layer, top_k, strength, recipe, tuple(regions), base)
            if figures["flip_rate"] >= TARGET_FLIP:
                return


def _fill_trials(generator: GeneratorBase, tuner: TuningRenderer, classifier: AttributeClassifier,
                 goal: EditGoal, layers: Sequence[str], box: Rect,
                 anchors: dict[str, Anchor]) -> Iterator[Trial]:
    """Copies over the goal's footprint on each run of resolutions, every FILL_SCALES x FILL_CENTRES,
    each run placed by its coarsest layer's anchor."""
    heights = [generator.layers[generator.layer_index(layer)].height for layer in layers]
    fill_mask = footprint_mask(goal.region, generator.img_height, generator.img_width)
    for group in fill_layer_groups(layers, heights):
        anchor = anchors[group[0]]
        regions = tuner.regions([(fill_mask, anchor)])
        for scale, centre in itertools.product(FILL_SCALES, FILL_CENTRES):
            recipe = fill_recipe(goal, group, fill_mask, box, anchor, scale, centre)
            figures = try_recipe(tuner, classifier, recipe, goal, regions)
            yield Trial(figures, "+".join(group), 0, 1.0, recipe, tuple(regions), fill=(scale, centre))


def find_recipe(generator: GeneratorBase, tuner: TuningRenderer, classifier: AttributeClassifier,
                samples: Samples, goal: EditGoal, top_ks: Sequence[int] = TOP_KS,
                strengths: Sequence[float] = STRENGTHS,
                report: Report | None = None) -> tuple[Recipe, dict[str, Any]]:
    """The best (layer, channel count, strength) for ``goal`` on the tuning samples, as an anchored
    recipe.  Then every other layer's edits are tried on top of the best single layer's, and kept
    where they widen the margin: a mouth is drawn over two resolutions, and one layer that just
    meets the aims on the tuning seeds may not on others (open mouth: 98% of tuning mouths, 90% of
    the report's)."""
    mean_box, grown = region_prior(goal.region, generator.img_height, generator.img_width)
    mask = (footprint_mask(goal.region, generator.img_height, generator.img_width) if goal.footprint
            else Mask((mean_box,)))
    trials: list[Trial] = []
    layers = candidate_layers(generator)
    plans: dict[str, _LayerPlan] = {}  # each layer's anchor and placements, found once

    def search(layer: str, base: Trial | None = None) -> None:
        if layer not in plans:
            anchor = find_anchor(samples, layer, grown)
            plans[layer] = _LayerPlan(anchor, placed_rasters(samples, layer, mask, anchor),
                                      tuner.regions([(mask, anchor)]))
        for trial in _layer_trials(tuner, classifier, samples, goal, layer, mask, plans[layer],
                                   top_ks, strengths, base):
            trials.append(trial)
            if report:
                report(trial.line(goal))

    def best() -> Trial:
        return max(trials, key=lambda t: choice_key(t.figures, goal))

    for layer in layers:
        search(layer)
    if goal.fill:
        for trial in _fill_trials(generator, tuner, classifier, goal, layers, mean_box,
                                  {layer: plan.anchor for layer, plan in plans.items()}):
            trials.append(trial)
            if report:
                report(trial.line(goal))
    single = best()
    for layer in layers:
        if layer != single.layer:
            search(layer, base=single)
    chosen = best()
    reach, figures, recipe, reach_tuning = _refined(
        tuner, classifier, goal, chosen.figures, chosen.recipe,
        [({"reach": r}, f"anchors within {r:g} image heights", with_reach(chosen.recipe, r))
         for r in REACHES], report, keep_best=True)
    stronger, figures, recipe, stronger_tuning = _refined(
        tuner, classifier, goal, figures, recipe,
        [({"factor": f}, f"additions x{f:g}", with_additions_scaled(recipe, f)) for f in STRONGER],
        report)
    cover, cover_tuning = None, []
    if goal.artefact == "skin patch":
        above = cover_layers(generator)
        joined = "+".join(above)
        cover, figures, recipe, cover_tuning = _refined(
            tuner, classifier, goal, figures, recipe,
            [({"layers": joined, "offset": offset, "additions": additions},
              f"cover from {offset:g} image heights on {joined}, additions x{additions:g}",
              cover_recipe(recipe, above, offset, additions))
             for offset, additions in itertools.product(COVER_OFFSETS, COVER_ADDITIONS)], report)
    rest, figures, recipe, rest_tuning = _refined(
        tuner, classifier, goal, figures, recipe,
        [({"keep_rest": True, "factor": f}, f"the rest kept, additions x{f:g}",
          with_additions_scaled(recipe, f).keeping_rest()) for f in REST_FACTORS], report)
    stages = [t.stage() for t in chosen.stages]
    provenance = {
        "method": "feature-map channels found with engine.analysis.propose_feature_edit on "
                  "classifier-labelled samples, measured under the mask where the anchor places it "
                  "on each sample; anchor channels by engine.analysis.rank_channels; "
                  "the trial with the largest worst margin to the flip and locality aims chosen; "
                  "then each other layer's edits tried on top of the best single layer's, "
                  "then anchors that look for their peak only within a reach of their place, "
                  "then the additions a little stronger"
                  + ("; then copies of the portrait's own features from just above the mask over "
                     "it on the finest layers (engine FeatureCopy with an offset), against the "
                     "patch of average skin a fixed addition paints, with the additions under it "
                     "kept, halved or left out (cover_additions)" if goal.artefact == "skin patch"
                     else "")
                  + "; then the edits keeping the rest of the picture (engine keep_rest), with the "
                    "additions as they were and stronger"
                  + ("; for this removal, copies of the portrait's own features from nearer a "
                     "centre in the mask (engine FeatureCopy, scale < 1) on runs of layers, over "
                     "the feature's footprint (the share of renders whose pixels change when it is "
                     f"drawn or not, {FOOTPRINT_FLOOR:g} -> 0, {FOOTPRINT_FULL:g} -> 1) and placed "
                     "by the coarsest layer's anchor, were tried beside the single layers"
                     if goal.fill else ""),
        "goal": dataclasses.asdict(goal),
        "finding_seeds": [samples.seeds[0], samples.seeds[-1]],
        "confident_examples": {"target": int(len(samples.with_state(goal.attribute, goal.target))),
                               "other": int(len(samples.with_state(goal.attribute, 1 - goal.target)))},
        "region_prior": dataclasses.asdict(grown), "mask": dataclasses.asdict(mean_box),
        "layer": stages[0]["layer"], "strength": stages[0].get("strength"),
        "top_k": stages[0].get("channels"),
        "figures": figures, "stages": stages, "reach": reach and reach["reach"],
        "reach_tuning": reach_tuning,
        "stronger": stronger and stronger["factor"], "stronger_tuning": stronger_tuning,
        **({"cover": cover and cover["offset"], "cover_additions": cover and cover["additions"],
            "cover_tuning": cover_tuning} if cover_tuning else {}),
        "keep_rest": rest is not None, "keep_rest_factor": rest and rest["factor"],
        "keep_rest_tuning": rest_tuning,
        "tuning_seeds": [int(tuner.tuning.seeds[0]), int(tuner.tuning.seeds[-1])],
        "tuning": [{**t.stage(), **({"on": t.base.layer} if t.base else {}),
                    **{k: round(v, 4) for k, v in t.figures.items()}} for t in trials],
    }
    recipe = dataclasses.replace(recipe, provenance=provenance, model_hash=model_hash(generator))
    return recipe, figures


def _refined(tuner: TuningRenderer, classifier: AttributeClassifier, goal: EditGoal,
             figures: dict[str, float], recipe: Recipe,
             variants: Sequence[tuple[dict[str, Any], str, Recipe]],
             report: Report | None, keep_best: bool = False,
             ) -> tuple[dict[str, Any] | None, dict[str, float], Recipe, list[dict[str, Any]]]:
    """Each (entry, text, variant) of ``variants`` scored on the tuning samples and reported; a
    variant is kept where it widens the margin to the aims over ``recipe``'s ``figures`` and the
    variants kept before it (with ``keep_best``, over the variants before it only: one of them is
    kept).  Returns the kept one's entry (None if none), figures and recipe, and every variant's
    entry with its figures."""
    kept, tuning = None, []
    for entry, text, variant in variants:
        scored = try_recipe(tuner, classifier, variant, goal, tuner.regions(recipe_placements(variant)))
        tuning.append({**entry, **scored})
        if report:
            report(f"{goal.name}: {text}  " + figures_text(scored))
        if (keep_best and kept is None) or choice_key(scored, goal) > choice_key(figures, goal):
            kept, figures, recipe = entry, scored, variant
    return kept, figures, recipe, tuning


def with_additions_scaled(recipe: Recipe, factor: float) -> Recipe:
    """``recipe`` with its feature additions ``factor`` times as strong (copies are left alone: a
    copy's amount of 1 already replaces the features)."""
    return dataclasses.replace(recipe, edits=tuple(
        dataclasses.replace(e, amount=e.amount * factor) if isinstance(e, FeatureEdit) else e
        for e in recipe.edits))


def with_reach(recipe: Recipe, reach: float | None) -> Recipe:
    """``recipe`` with every anchor looking for its peak within ``reach`` of its place."""
    return reanchored(recipe, lambda anchor: dataclasses.replace(anchor, reach=reach))
