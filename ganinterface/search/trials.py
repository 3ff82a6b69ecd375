"""Scoring one tried setting of the search on the tuning samples, and ranking the settings."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from ganinterface.demo.classifier import AttributeClassifier
from ganinterface.engine.scene import Recipe
from ganinterface.search.artefacts import ARTEFACT_AIM, MEASURES, artefact_scores
from ganinterface.search.goals import EditGoal
from ganinterface.search.metrics import flip_rate, locality, mask_area, preservation
from ganinterface.search.tuning import TuningRenderer


def try_recipe(tuner: TuningRenderer, classifier: AttributeClassifier, recipe: Recipe,
               goal: EditGoal, regions: Sequence[np.ndarray]) -> dict[str, float]:
    """Flip rate, locality, preservation, mask area and (where the goal names one) the worst skin
    tone's or hair colour's artefact of ``recipe`` on the tuning samples (read before the edit
    once, when they were drawn)."""
    tuning = tuner.tuning
    after = tuner.images(recipe)
    localities = [locality(b, a, r) for b, a, r in zip(tuning.images, after, regions)]
    read_before = {k: v.argmax(axis=1) for k, v in tuning.probabilities.items()}
    read_after = {k: v.argmax(axis=1) for k, v in classifier.classify(after).items()}
    # rounded as the provenance stores them, so the progress lines and the file agree
    figures = {"flip_rate": round(flip_rate(read_before[goal.attribute], read_after[goal.attribute],
                                            goal.target), 4),
               "locality": round(float(np.mean(localities)), 4),
               "preservation": round(preservation(read_before, read_after, goal.attribute), 4),
               "mask_area": round(float(np.mean([mask_area(r) for r in regions])), 4)}
    if goal.artefact:
        attribute = MEASURES[goal.artefact][0]
        groups = [classifier.attributes[attribute][i] for i in read_before[attribute]]
        worst = artefact_scores(goal.artefact, tuning.images, after, regions, groups)["worst"]
        if np.isfinite(worst):  # NaN: measured on no portrait
            figures["artefact"] = worst
    return figures


ARTEFACT_POINT = 0.01  # one CIEDE2000 unit of artefact weighs as one percentage point of the others


def choice_key(figures: dict[str, float], goal: EditGoal) -> tuple[float, float, float]:
    """Rank trials by their worst margin to the goal's aims (flip, locality, preservation, mask
    area and the worst group's artefact, those the figures have), then by flip, then by locality.

    A setting that flips every seed but spills half its change outside the mask loses to one that
    meets both aims; where none does, the one closest to meeting all wins."""
    flip = figures["flip_rate"] if np.isfinite(figures["flip_rate"]) else 0.0
    local = figures["locality"]
    margins = [flip - goal.flip_aim, local - goal.locality_aim,
               figures.get("preservation", 1.0) - goal.preservation_aim,
               goal.mask_aim - figures.get("mask_area", 0.0)]
    if "artefact" in figures:
        margins.append((ARTEFACT_AIM - figures["artefact"]) * ARTEFACT_POINT)
    return min(margins), flip, local


def figures_text(figures: dict[str, float]) -> str:
    artefact = f"  artefact {figures['artefact']:.1f}" if "artefact" in figures else ""
    return (f"flip {figures['flip_rate']:.0%}  locality {figures['locality']:.0%}  "
            f"kept {figures['preservation']:.0%}  mask {figures['mask_area']:.0%}{artefact}")


@dataclasses.dataclass(frozen=True, eq=False)
class Trial:
    """One tried setting: this layer's edits, on top of an earlier trial's (``base``) or alone."""

    figures: dict[str, float]
    layer: str
    top_k: int
    strength: float
    recipe: Recipe
    regions: tuple[np.ndarray, ...]  # where all its edits land on each tuning seed
    base: Trial | None = None
    fill: tuple[float, float] | None = None  # a copy (scale, centre) on the layers in ``layer``

    @property
    def stages(self) -> list[Trial]:
        return (self.base.stages if self.base else []) + [self]

    def stage(self) -> dict[str, Any]:
        if self.fill:
            return {"layer": self.layer, "copy_scale": self.fill[0], "copy_centre": self.fill[1]}
        return {"layer": self.layer, "channels": self.top_k, "strength": self.strength}

    def line(self, goal: EditGoal) -> str:
        on_top = f" on {self.base.layer}" if self.base else ""
        return f"{goal.name}: {stage_text(self.stage())}{on_top}  " + figures_text(self.figures)


def stage_text(stage: dict[str, Any]) -> str:
    """One stage of a recipe as the search reports it: "b32.conv0 64 channels x1.5", or for a copy
    "copy b64.conv0+b64.conv1 x0.7 about 1 of the box"."""
    if "copy_scale" in stage:
        return f"copy {stage['layer']} x{stage['copy_scale']:g} about {stage['copy_centre']:g} of the box"
    return f"{stage['layer']} {stage['channels']} channels x{stage['strength']:g}"
