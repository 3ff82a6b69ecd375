"""Finding the built-in model's shipped recipes and directions, and writing them with provenance."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganinterface.atomic import atomic_write_text
from ganinterface.demo.classifier import AttributeClassifier
from ganinterface.engine.directions import (Direction, StyleDirection, model_hash, save_direction,
                                            save_style_direction)
from ganinterface.engine.scene import Recipe
from ganinterface.export.userfiles import read_recipe
from ganinterface.models.base import GeneratorBase
from ganinterface.search.directions import (JOINED, METHOD_FILES, DirectionTrials, attribute_splits,
                                            candidates, choose_direction, direction_stem,
                                            figures_of, goals_of, joined_sides, scored_text,
                                            with_figures)
from ganinterface.search.goals import GOALS, EditGoal
from ganinterface.search.levels import LEVEL_FLOORS, has_levels, with_levels
from ganinterface.search.recipes import STRENGTHS, TOP_KS, Report, candidate_layers, find_recipe
from ganinterface.search.samples import FINDING_SEED_BASE, Progress, Samples, draw_samples
from ganinterface.search.tuning import TuningRenderer

if TYPE_CHECKING:
    from ganinterface.export.batch import ExecutorFor

FINDING_SAMPLES = 600  # labelled samples the channels are learnt from
TUNING_SEEDS = 150  # seeds the layer, channel count and strength are chosen on (a third to a half of
# them start in the state an edit leaves: on 60 seeds, 19 closed mouths let one flip more or less move
# the rate by 5 points)
DIRECTION_TUNING_SEEDS = 200  # seeds each direction's rows, channels and amounts are chosen on (on 60,
# ~20 with a band chose an amount that removed 91% of them and 76% of the bands on seeds 0-199)
HELD_OUT_SEEDS = range(0, 200)  # the edit report's seeds: figures no choice was made on


def make_shipped_edits(generator: GeneratorBase, classifier: AttributeClassifier, out_dir: Path,
                       finding: int = FINDING_SAMPLES, tuning: int = TUNING_SEEDS, top_ks: Sequence[int] = TOP_KS,
                       strengths: Sequence[float] = STRENGTHS,
                       progress: Progress | None = None, report: Report | None = None,
                       resume: bool = False, executor_for: "ExecutorFor | None" = None,
                       goals: Sequence[EditGoal] = GOALS) -> dict[str, Any]:
    """Write recipes/*.json for ``goals`` under ``out_dir``; return a summary.  With ``resume``,
    recipes an interrupted run already wrote there for the same goals and model are kept (each is
    written as soon as it is found).  ``executor_for``: draw the samples as batch jobs
    (``draw_samples``)."""
    layers = candidate_layers(generator)
    seeds = list(range(FINDING_SEED_BASE, FINDING_SEED_BASE + finding))
    samples = draw_samples(generator, classifier, seeds, layers, progress=progress,
                           executor_for=executor_for)
    tuning_seeds = list(range(FINDING_SEED_BASE + finding, FINDING_SEED_BASE + finding + tuning))
    tuner = TuningRenderer(generator, draw_samples(generator, classifier, tuning_seeds, layers,
                                                   executor_for=executor_for))
    (out_dir / "recipes").mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"recipes": {}}
    for goal in goals:
        path = out_dir / "recipes" / goal.file_name
        recipe = found_before(path, goal, model_hash(generator)) if resume else None
        if recipe is None:
            recipe, _ = find_recipe(generator, tuner, classifier, samples, goal, top_ks, strengths,
                                    report)
            atomic_write_text(path, recipe.to_json() + "\n")
        if goal.name in LEVEL_FLOORS and not has_levels(recipe):
            recipe = with_levels(recipe, samples, LEVEL_FLOORS[goal.name])
            atomic_write_text(path, recipe.to_json() + "\n")
        summary["recipes"][goal.name] = {"stages": recipe.provenance["stages"],
                                         **recipe.provenance["figures"]}
    return summary


def make_shipped_directions(generator: GeneratorBase, classifier: AttributeClassifier, out_dir: Path,
                            finding: int = FINDING_SAMPLES, tuning: int = DIRECTION_TUNING_SEEDS,
                            held_out: Sequence[int] = HELD_OUT_SEEDS, every_method: bool = True,
                            progress: Progress | None = None, report: Report | None = None,
                            executor_for: "ExecutorFor | None" = None) -> list[str]:
    """Write directions/NAME (the best direction per attribute on the tuning seeds, its figures on
    the ``held_out`` seeds in its JSON) and directions/methods/NAME.METHOD (each method's best, for
    the edit report); hair colours by mean difference alone.  Returns the names written.

    Learns from the recipes' finding seeds; tunes on the seeds after the recipes' tuning seeds.
    The samples are drawn here or, with ``executor_for``, as batch jobs (the same samples)."""
    digest = model_hash(generator)

    def drawn(seeds: Sequence[int], shown: Progress | None = None) -> Samples:
        return draw_samples(generator, classifier, list(seeds), [], progress=shown,
                            executor_for=executor_for)

    samples = drawn(range(FINDING_SEED_BASE, FINDING_SEED_BASE + finding), progress)
    base = FINDING_SEED_BASE + finding + TUNING_SEEDS
    trials = DirectionTrials(TuningRenderer(generator, drawn(range(base, base + tuning))), classifier)
    held = DirectionTrials(TuningRenderer(generator, drawn(held_out)), classifier)
    directory = out_dir / "directions"
    written = []
    for split in attribute_splits(samples, classifier.attributes):
        every = every_method and split.attribute != "hair_colour"
        scores = []
        for method, direction in candidates(generator, classifier, samples, split, digest, every, trials,
                                            report):
            scores.append(trials.score(direction, method, split.attribute, goals_of(split)))
            if report:
                report(f"{split.name}: {scored_text(scores[-1])}")
        joined = joined_sides(scores)
        if joined is not None:
            scores.append(trials.score(joined, JOINED, split.attribute, goals_of(split)))
            if report:
                report(f"{split.name}: {scored_text(scores[-1])}")
        stem = direction_stem(split.name)
        for method, file_stem in METHOD_FILES.items():
            mine = [s for s in scores if s.method == method]
            if every and mine:
                chosen = choose_direction(mine)
                write_any(directory / "methods" / f"{stem}.{file_stem}", with_figures(chosen))
        best = choose_direction(scores)
        measured = held.at_amounts(best, split.attribute)
        write_any(directory / stem, with_figures(best, tuning=figures_of(best, trials.seeds),
                                                held_out=measured))
        if report:
            report(f"{split.name}: chose {scored_text(best)}; on seeds {held_out[0]}-{held_out[-1]} "
                   f"flip {measured['flip_rate']:.0%} kept {measured['preservation']:.0%}")
        written.append(split.name)
    return written


def write_any(stem: Path, direction: Direction | StyleDirection) -> None:
    """STEM.npy + STEM.json for a W direction, STEM.json alone for a style-space one (an older
    STEM.npy is removed: it would be read as this direction's)."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    npy = stem.with_name(stem.name + ".npy")
    if isinstance(direction, StyleDirection):
        npy.unlink(missing_ok=True)
        save_style_direction(stem.with_name(stem.name + ".json"), direction)
    else:
        save_direction(npy, direction)


def found_before(path: Path, goal: EditGoal, digest: str) -> Recipe | None:
    """The recipe at ``path`` if a search for this ``goal`` on this model wrote it, else None."""
    if not path.exists():
        return None
    recipe = read_recipe(path)
    provenance = recipe.provenance or {}
    same = (recipe.model_hash == digest and provenance.get("goal") == dataclasses.asdict(goal)
            and "figures" in provenance)
    return recipe if same else None
