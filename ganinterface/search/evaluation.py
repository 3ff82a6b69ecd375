"""``demo-eval --edits``: score the shipped recipes and directions on seeds not used to make them.

For each recipe, applied with its anchor and again without it, and for the matching direction at
the amount that reaches the anchored recipe's flip rate: flip rate, locality (share of the absolute
pixel change inside the recipe's mask, dilated a few pixels, placed where the anchored recipe puts
it), preservation (other attributes unchanged, and the share of portraits each other attribute
changes on), mask area, and for the goals that name one, the skin patch or seam left behind per skin
tone or hair colour (CIEDE2000, ``search.artefacts``).  The direction is scored as shipped and as
each method found it (directions/methods/NAME.METHOD), so the choice among them is visible.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ganinterface import bundled
from ganinterface.demo.classifier import AttributeClassifier
from ganinterface.engine.directions import model_hash
from ganinterface.engine.kinds import Edit
from ganinterface.engine.renderer import Renderer
from ganinterface.engine.scene import Recipe, Scene
from ganinterface.export.userfiles import read_direction, read_recipe
from ganinterface.models.base import GeneratorBase
from ganinterface.search.directions import (AMOUNTS, FLIP_AIM, JOINED, METHOD_FILES, PRESERVATION_AIM,
                                            AnyDirection)
from ganinterface.search.artefacts import ARTEFACT_AIM, MEASURES, artefact_scores
from ganinterface.search.goals import GOALS, EditGoal
from ganinterface.search.metrics import changed_shares, flip_rate, locality, mask_area, preservation
from ganinterface.search.placement import reanchored, recipe_placements, scoring_regions
from ganinterface.search.samples import Progress, draw_samples

if TYPE_CHECKING:
    from ganinterface.export.batch import ExecutorFor

DEFAULT_SEEDS = range(0, 200)
DIRECTION_SEARCH_SEEDS = 50
GOAL_DIRECTIONS = {"mouth_open": "mouth-open", "hair_band": "hair-band"}


def without_anchor(recipe: Recipe) -> Recipe:
    return reanchored(recipe, lambda anchor: None)


@dataclasses.dataclass
class Unedited:
    """The portraits an edit is scored on: their scenes, images and classifier readings."""

    scenes: list[Scene]
    images: np.ndarray
    read: dict[str, np.ndarray]  # attribute -> class index

    def picked(self, indices: Sequence[int]) -> Unedited:
        indices = list(indices)
        return Unedited([self.scenes[i] for i in indices], self.images[indices],
                        {k: v[indices] for k, v in self.read.items()})


def edited_images(renderer: Renderer, scenes: Sequence[Scene], edits: tuple[Edit, ...]) -> np.ndarray:
    after = []
    for scene in scenes:
        result = renderer.render(dataclasses.replace(scene, edits=edits))
        if result.error:
            raise ValueError(result.error)
        after.append(result.image)
    return np.stack(after)


def score_edits(renderer: Renderer, classifier: AttributeClassifier, before: Unedited,
                goal: EditGoal, edits: tuple[Edit, ...], regions: list[np.ndarray]) -> dict[str, float]:
    """Flip rate, locality, preservation (and what changes), mask area and the goal's artefact of
    ``edits`` on the ``before`` portraits."""
    after_images = edited_images(renderer, before.scenes, edits)
    read_after = {k: v.argmax(axis=1) for k, v in classifier.classify(after_images).items()}
    scores: dict[str, Any] = {
        "flip_rate": round(flip_rate(before.read[goal.attribute], read_after[goal.attribute], goal.target), 4),
        "locality": round(float(np.mean([locality(b, a, r) for b, a, r
                                         in zip(before.images, after_images, regions)])), 4),
        "preservation": round(preservation(before.read, read_after, goal.attribute), 4),
        "changed": {name: round(share, 4) for name, share
                    in changed_shares(before.read, read_after, goal.attribute).items()},
        "mask_area": round(float(np.mean([mask_area(r) for r in regions])), 4),
    }
    if goal.artefact:
        attribute = MEASURES[goal.artefact][0]
        groups = [classifier.attributes[attribute][i] for i in before.read[attribute]]
        scores["artefact"] = artefact_scores(goal.artefact, before.images, after_images, regions, groups)
    return scores


def _direction_edits(direction: AnyDirection, amount: float) -> tuple[Edit, ...]:
    return (direction.to_edit(amount),)


def _match_direction(renderer: Renderer, classifier: AttributeClassifier, before: Unedited,
                     goal: EditGoal, direction: AnyDirection, target_flip: float) -> float:
    """The smallest amount (signed towards the goal) whose flip rate reaches ``target_flip``."""
    sign = 1.0 if goal.target == 1 else -1.0
    subset = before.picked(range(min(DIRECTION_SEARCH_SEEDS, len(before.scenes))))
    best_amount, best_flip = AMOUNTS[-1], -1.0
    for amount in AMOUNTS:
        after = edited_images(renderer, subset.scenes, _direction_edits(direction, sign * amount))
        read = classifier.classify(after)[goal.attribute].argmax(axis=1)
        flip = flip_rate(subset.read[goal.attribute], read, goal.target)
        flip = flip if np.isfinite(flip) else 0.0
        if flip >= target_flip:
            return sign * amount
        if flip > best_flip:
            best_amount, best_flip = amount, flip
    return sign * best_amount


def edit_report(generator: GeneratorBase, classifier: AttributeClassifier,
                seeds: Sequence[int] | None = None, device: Any = "cpu",
                progress: Progress | None = None, directory: Path | None = None,
                executor_for: "ExecutorFor | None" = None) -> dict[str, Any]:
    directory = directory or bundled.checkpoints_dir()
    seeds = list(seeds if seeds is not None else DEFAULT_SEEDS)
    renderer = Renderer(generator, device)
    digest = model_hash(generator)
    # every file read before any sampling, so a wrong directory fails at once
    recipes = {goal.name: read_recipe(directory / "recipes" / goal.file_name, digest) for goal in GOALS}
    directions = {stem: _read_methods(directory / "directions", stem, generator, digest)
                  for stem in dict.fromkeys(GOAL_DIRECTIONS[goal.attribute] for goal in GOALS)}
    samples = draw_samples(generator, classifier, seeds, [], executor_for=executor_for)
    scenes = [Scene(seed=seed) for seed in seeds]
    before = Unedited(scenes, samples.images, {k: v.argmax(axis=1) for k, v in samples.probabilities.items()})
    height, width = generator.img_height, generator.img_width
    report: dict[str, Any] = {"seeds": [seeds[0], seeds[-1]], "count": len(seeds), "recipes": {},
                              "directions": {}, "direction_methods": {}}
    for done, goal in enumerate(GOALS):
        recipe = recipes[goal.name]
        variants = {"anchored": recipe, "unanchored": without_anchor(recipe)}
        regions = {name: scoring_regions(renderer, scenes, recipe_placements(variant), height, width)
                   for name, variant in variants.items()}
        scores = {name: score_edits(renderer, classifier, before, goal, variant.edits, regions[name])
                  for name, variant in variants.items()}
        report["recipes"][goal.name] = scores
        stem = GOAL_DIRECTIONS[goal.attribute]
        shipped, by_method = directions[stem]
        methods = {}
        for method, direction in by_method.items():
            amount = _match_direction(renderer, classifier, before, goal, direction,
                                      scores["anchored"]["flip_rate"])
            methods[method] = {  # scored with the anchored recipe's masks
                **score_edits(renderer, classifier, before, goal, _direction_edits(direction, amount),
                              regions["anchored"]),
                "amount": amount}
        report["direction_methods"][goal.name] = methods
        direction = by_method[shipped]
        amount = direction.provenance.get("amounts", {}).get(str(goal.target))
        at_own = (methods[shipped] if amount is None else  # the amount it ships with
                  {**score_edits(renderer, classifier, before, goal, _direction_edits(direction, amount),
                                 regions["anchored"]), "amount": amount})
        report["directions"][goal.name] = {**at_own, "direction": stem, "method": shipped}
        if progress:
            progress(done + 1, len(GOALS))
    return report


def _read_methods(folder: Path, stem: str, generator: GeneratorBase,
                  digest: str) -> tuple[str, dict[str, AnyDirection]]:
    """The shipped direction's method, and each method's direction (the shipped one under its
    method when directions/methods/ has none for it)."""
    shipped = read_direction(_direction_file(folder, stem), generator, digest)
    method = shipped.provenance.get("chosen_by", "mean difference")
    by_method: dict[str, AnyDirection] = {}
    for name, file_stem in METHOD_FILES.items():
        path = _direction_file(folder / "methods", f"{stem}.{file_stem}")
        if path.exists():
            by_method[name] = read_direction(path, generator, digest)
    by_method.setdefault(method, shipped)
    return method, by_method


def _direction_file(folder: Path, stem: str) -> Path:
    """STEM.npy (a W direction with its sidecar), else STEM.json (a style-space direction)."""
    npy = folder / f"{stem}.npy"
    return npy if npy.exists() else folder / f"{stem}.json"


GOALS_BY_NAME = {goal.name: goal for goal in GOALS}


def aims_text(goal: EditGoal) -> str:
    aims = [f"flip >= {goal.flip_aim:.0%}", f"locality >= {goal.locality_aim:.0%}",
            f"preservation >= {goal.preservation_aim:.0%}"]
    if goal.mask_aim < 1:
        aims.append(f"mask <= {goal.mask_aim:.0%}")
    if goal.artefact:
        aims.append(f"{goal.artefact} < {ARTEFACT_AIM:g} dE2000 on each {MEASURES[goal.artefact][0]}")
    return "(aims: " + ", ".join(aims) + ")"


def _artefact_text(scores: dict[str, Any]) -> str:
    artefact = scores.get("artefact")
    return f"{artefact['worst']:>9.1f}" if artefact else ""


def _details(variant: str, scores: dict[str, Any]) -> list[str]:
    """The anchored recipe's artefact per group and the other attributes it changes most."""
    lines = []
    artefact = scores.get("artefact")
    if artefact:
        groups = ", ".join(f"{g} {v:.1f}" for g, v in artefact["groups"].items())
        lines.append(f"{'':<18}{variant} {artefact['artefact']} (dE2000) by {artefact['by']}: {groups}")
    changed = sorted(scores.get("changed", {}).items(), key=lambda item: -item[1])[:3]
    if changed and changed[0][1] > 0:
        shares = ", ".join(f"{name} {share:.1%}" for name, share in changed if share > 0)
        lines.append(f"{'':<18}{variant} also changes: {shares}")
    return lines


METHOD_LABELS = {"mean difference": "mean diff.", "conditional boundary": "boundary",
                 "style channels": "style chan.", "learnt style offsets": "learnt",
                 JOINED: "joined"}


def format_edit_report(report: dict[str, Any]) -> str:
    lines = [f"Edits scored on {report['count']} seeds ({report['seeds'][0]}-{report['seeds'][1]})",
             f"{'edit':<18}{'variant':<12}{'flip':>7}{'locality':>10}{'preserv.':>10}{'mask':>7}"
             f"{'artefact':>9}"]
    for name, variants in report["recipes"].items():
        shipped = report["directions"][name]
        methods = report["direction_methods"][name]
        rows = (list(variants.items()) + [(METHOD_LABELS.get(m, m), s) for m, s in methods.items()]
                + [("shipped", shipped)])
        for variant, s in rows:
            lines.append(f"{name:<18}{variant:<12}{s['flip_rate']:>7.1%}{s['locality']:>10.1%}"
                         f"{s['preservation']:>10.1%}{s['mask_area']:>7.1%}{_artefact_text(s)}")
        if name in GOALS_BY_NAME:
            lines.append(f"{'':<18}{aims_text(GOALS_BY_NAME[name])}")
        if "anchored" in variants:
            lines.extend(_details("anchored", variants["anchored"]))
        lines.append(f"{'':<18}(directions: each method at the anchored recipe's flip; shipped: the "
                     f"{METHOD_LABELS.get(shipped['method'], shipped['method'])} direction at its own "
                     f"amount {shipped['amount']:+.2f}, aim flip >= {FLIP_AIM:.0%}, "
                     f"preservation >= {PRESERVATION_AIM:.0%})")
    return "\n".join(lines)
