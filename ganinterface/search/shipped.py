"""Finding the built-in model's shipped recipes and directions, and writing them with provenance."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ganinterface.atomic import atomic_write_text
from ganinterface.demo.classifier import AttributeClassifier
from ganinterface.engine.directions import save_direction
from ganinterface.models.base import GeneratorBase
from ganinterface.search.directions import attribute_directions, direction_stem
from ganinterface.search.goals import GOALS
from ganinterface.search.recipes import STRENGTHS, TOP_KS, Report, candidate_layers, find_recipe
from ganinterface.search.samples import FINDING_SEED_BASE, Progress, draw_samples
from ganinterface.search.tuning import TuningRenderer

FINDING_SAMPLES = 600  # labelled samples the channels are learnt from
TUNING_SEEDS = 150  # seeds the layer, channel count and strength are chosen on (a third to a half of
# them start in the state an edit leaves: on 60 seeds, 19 closed mouths let one flip more or less move
# the rate by 5 points)


def make_shipped_edits(generator: GeneratorBase, classifier: AttributeClassifier, out_dir: Path,
                       finding: int = FINDING_SAMPLES, tuning: int = TUNING_SEEDS, top_ks: Sequence[int] = TOP_KS,
                       strengths: Sequence[float] = STRENGTHS,
                       progress: Progress | None = None, report: Report | None = None) -> dict[str, Any]:
    """Write recipes/*.json and directions/*.npy(+json) under ``out_dir``; return a summary."""
    layers = candidate_layers(generator)
    seeds = list(range(FINDING_SEED_BASE, FINDING_SEED_BASE + finding))
    samples = draw_samples(generator, classifier, seeds, layers, progress=progress)
    tuning_seeds = list(range(FINDING_SEED_BASE + finding, FINDING_SEED_BASE + finding + tuning))
    tuner = TuningRenderer(generator, draw_samples(generator, classifier, tuning_seeds, layers))
    (out_dir / "recipes").mkdir(parents=True, exist_ok=True)
    (out_dir / "directions").mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"recipes": {}, "directions": []}
    for goal in GOALS:
        recipe, figures = find_recipe(generator, tuner, classifier, samples, goal, top_ks, strengths,
                                      report)
        atomic_write_text(out_dir / "recipes" / goal.file_name, recipe.to_json() + "\n")
        summary["recipes"][goal.name] = {"stages": recipe.provenance["stages"], **figures}
    for direction in attribute_directions(generator, samples, classifier.attributes):
        save_direction(out_dir / "directions" / f"{direction_stem(direction.name)}.npy", direction)
        summary["directions"].append(direction.name)
    return summary
