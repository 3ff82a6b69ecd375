"""``demo-eval --projection``: how well do pictures the generator never made project into it?

Renders of the procedural renderer (``demo.portraits``, seed for seed) are projected into the
generator as ``project`` projects them (a detail map fitted too, ``ProjectionSettings.detail``)
starting from the encoder's guess and from ``w_avg``, and from the encoder's guess without the
detail map, with the same number of steps.  For each start:

* ``psnr_db``: mean PSNR of the projection's render against the picture;
* ``agreement``: per attribute, the share of pictures the classifier reads the same in the picture
  and in its projection;
* ``seconds_per_image``: wall time of the encoder and the search, per picture, and
  ``cpu_seconds_per_image``, the processor time they took (on a machine busy with other work, what
  the picture would take alone on one core); each picture is searched on one thread, several side
  by side as the job's workers (``--workers``, ``--ray``);
* ``recipes``: the shipped recipes applied to the projections that lack what they add (open mouth
  on closed ones, add hair band on those without), scored as ``demo-eval --edits`` scores them
  (flip rate, locality, preservation, mask area);
* ``morph``: the share of pairs of projections (first and second picture, third and fourth, ...)
  whose midpoint in W+ (and detail maps) the classifier reads confidently (mouth and hair band,
  p >= 0.9).
"""

from __future__ import annotations

import dataclasses
import io
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ganinterface import bundled
from ganinterface.demo import portraits
from ganinterface.demo.classifier import AttributeClassifier
from ganinterface.demo.evaluate import CONFIDENCE, confident
from ganinterface.engine.directions import model_hash
from ganinterface.engine.encoder import Encoder, encode
from ganinterface.engine.animation import latent_keyframe, morph
from ganinterface.engine.projection import (STEPS_FROM_A_GUESS, ProjectionSettings, crop_to_aspect,
                                            project, psnr, search_dtype)
from ganinterface.engine.picture_distance import PerceptualDistance
from ganinterface.engine.renderer import Renderer
from ganinterface.engine.scene import Scene
from ganinterface.export.progress import CancelToken
from ganinterface.export.userfiles import read_recipe
from ganinterface.models.base import GeneratorBase
from ganinterface.search.evaluation import Unedited, edited_images, score_edits
from ganinterface.search.goals import GOALS
from ganinterface.search.placement import recipe_placements, scoring_regions

if TYPE_CHECKING:
    from ganinterface.export.batch import Chunk, ExecutorFor, Outcome

Progress = Callable[[int, int], None]

DEFAULT_SEEDS = range(0, 100)
DEFAULT_STEPS = STEPS_FROM_A_GUESS  # per picture, as the window and `project` search from a guess
AGREEMENT_ATTRIBUTES = ("mouth_open", "hair_band", "hair_colour", "eye_colour")
RECIPE_GOALS = ("open mouth", "add hair band")
AIMS = {"psnr_db": 27.0, "agreement": 0.95, "seconds_per_image": 5.0, "flip_rate": 0.85,
        "locality": 0.80, "morph_confident": 0.90}
WITH_ENCODER, WITHOUT_DETAIL, WITHOUT_ENCODER = "with encoder", "no detail map", "without encoder"


@dataclasses.dataclass
class Projected:
    """Pictures and their projections, as scenes and as the renderer draws them."""

    targets: np.ndarray  # (N, H, W, 3) uint8
    scenes: list[Scene]  # each with the projection's W+ latent
    images: np.ndarray  # (N, H, W, 3) uint8, the scenes rendered
    seconds: list[float]
    cpu_seconds: list[float]
    pictures_at_once: int  # searched side by side (the job's workers), each on one thread


@dataclasses.dataclass(frozen=True)
class Projecting:
    """The search of ``project_pictures`` as a batch job's task: each item a picture (uint8
    (H, W, 3)), its file an ``.npz`` of the W+ latent found and the seconds (wall, processor) the
    encoder and the search took on the worker's one thread."""

    settings: ProjectionSettings
    encoder: Encoder | None
    distance: PerceptualDistance
    batch_size: int = 1

    def run_chunk(self, renderer: Renderer, chunk: "Chunk",
                  cancel: CancelToken | None = None) -> "list[Outcome]":
        from ganinterface.export.batch import Outcome

        outcomes = []
        for index, picture in chunk:
            if cancel is not None:
                cancel.raise_if_cancelled()
            outcomes.append(Outcome(index, (self._projected(renderer.generator, picture),)))
        return outcomes

    def _projected(self, generator: GeneratorBase, picture: np.ndarray) -> bytes:
        started, cpu_started = time.perf_counter(), time.thread_time()
        target = crop_to_aspect(picture, generator)
        start = None if self.encoder is None else encode(self.encoder, target)
        found = project(generator, target, self.settings, start_w=start, distance=self.distance)
        seconds, cpu_seconds = time.perf_counter() - started, time.thread_time() - cpu_started
        buffer = io.BytesIO()
        detail = {f"detail.{name}": value.cpu().numpy() for name, value in (found.detail or {}).items()}
        np.savez(buffer, ws=found.ws(generator.num_ws)[0].cpu().numpy(), seconds=seconds,
                 cpu_seconds=cpu_seconds, **detail)
        return buffer.getvalue()


def project_pictures(renderer: Renderer, targets: np.ndarray, settings: ProjectionSettings,
                     encoder: Encoder | None, distance: PerceptualDistance,
                     progress: Progress | None = None,
                     executor_for: "ExecutorFor | None" = None) -> Projected:
    """``targets`` projected as a batch job where ``executor_for`` says (by default this process,
    one thread), the projections rendered here."""
    from ganinterface.export.batch import InProcess, gather
    from ganinterface.export.progress import no_progress

    task = Projecting(settings, encoder, distance)
    where = executor_for or (lambda task, _items: InProcess(renderer.generator, renderer.device, task))
    executor = where(task, len(targets))
    found = [np.load(io.BytesIO(data), allow_pickle=False) for data in
             gather(executor, list(targets), task, progress=progress or no_progress)]
    scenes = [Scene(w=result["ws"], detail_maps={name[len("detail."):]: result[name] for name in result.files
                                                 if name.startswith("detail.")} or None)
              for result in found]
    return Projected(targets, scenes, np.stack([_rendered(renderer, scene) for scene in scenes]),
                     [float(result["seconds"]) for result in found],
                     [float(result["cpu_seconds"]) for result in found], executor.workers)


def _rendered(renderer: Renderer, scene: Scene) -> np.ndarray:
    result = renderer.render(scene)
    if result.error:
        raise ValueError(result.error)
    return result.image


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR of two uint8 (H, W, 3) images, in dB on the 0-255 scale."""
    return psnr(*(torch.from_numpy(image).permute(2, 0, 1)[None].double() / 127.5 - 1 for image in (a, b)))


def projection_figures(renderer: Renderer, classifier: AttributeClassifier, projected: Projected,
                       recipes: dict[str, Any]) -> dict[str, Any]:
    """Every figure of one start (see the module's docstring)."""
    read_targets = {k: v.argmax(axis=1) for k, v in classifier.classify(projected.targets).items()}
    read = {k: v.argmax(axis=1) for k, v in classifier.classify(projected.images).items()}
    before = Unedited(projected.scenes, projected.images, read)
    return {
        "psnr_db": round(float(np.mean([psnr_db(a, b) for a, b
                                         in zip(projected.images, projected.targets)])), 2),
        "agreement": {name: round(float(np.mean(read_targets[name] == read[name])), 4)
                      for name in AGREEMENT_ATTRIBUTES},
        "seconds_per_image": round(float(np.mean(projected.seconds)), 2),
        "cpu_seconds_per_image": round(float(np.mean(projected.cpu_seconds)), 2),
        "recipes": {goal.name: _recipe_scores(renderer, classifier, before, goal, recipes[goal.name])
                    for goal in GOALS if goal.name in RECIPE_GOALS},
        "morph": _morph_scores(renderer, classifier, projected.scenes),
    }


def _recipe_scores(renderer: Renderer, classifier: AttributeClassifier, before: Unedited,
                   goal: Any, recipe: Any) -> dict[str, float]:
    """The recipe on the projections that do not yet have what it adds."""
    lacking = np.flatnonzero(before.read[goal.attribute] != goal.target)
    if not len(lacking):
        return {"count": 0}
    subset = before.picked(lacking)
    height, width = subset.images.shape[1:3]
    regions = scoring_regions(renderer, subset.scenes, recipe_placements(recipe), height, width)
    return {"count": int(len(lacking)),
            **score_edits(renderer, classifier, subset, goal, recipe.edits, regions)}


def _morph_scores(renderer: Renderer, classifier: AttributeClassifier,
                  scenes: Sequence[Scene]) -> dict[str, float]:
    pairs = [(a, b) for a, b in zip(scenes[0::2], scenes[1::2])]
    if not pairs:
        return {"pairs": 0}
    middles = [morph(Scene(), [latent_keyframe(a.w, a.detail_maps), latent_keyframe(b.w, b.detail_maps)],
                     3, len(a.w))[1] for a, b in pairs]
    images = edited_images(renderer, middles, ())
    return {"pairs": len(pairs),
            "confident": round(float(confident(classifier.classify(images)).mean()), 4)}


def projection_report(generator: GeneratorBase, classifier: AttributeClassifier,
                      seeds: Sequence[int] | None = None, *, encoder: Encoder | None,
                      distance: PerceptualDistance, steps: int = DEFAULT_STEPS, device: Any = "cpu",
                      progress: Progress | None = None, directory: Path | None = None,
                      executor_for: "ExecutorFor | None" = None) -> dict[str, Any]:
    """The figures for renders of ``seeds``, with the encoder (when given) and without it; the
    pictures are projected as batch jobs where ``executor_for`` says (``project_pictures``)."""
    directory = directory or bundled.checkpoints_dir()
    seeds = list(seeds if seeds is not None else DEFAULT_SEEDS)
    digest = model_hash(generator)
    recipes = {goal.name: read_recipe(directory / "recipes" / goal.file_name, digest)
               for goal in GOALS if goal.name in RECIPE_GOALS}
    renderer = Renderer(generator, device)
    targets, _ = portraits.render_batch(seeds, generator.img_height, generator.img_width)
    settings = ProjectionSettings(space="w+", steps=steps)
    starts = {WITH_ENCODER: (encoder, settings),
              WITHOUT_DETAIL: (encoder, dataclasses.replace(settings, detail=False)),
              WITHOUT_ENCODER: (None, settings)}
    if encoder is None:
        starts = {WITHOUT_ENCODER: starts[WITHOUT_ENCODER]}
    total = len(starts) * len(seeds)
    report: dict[str, Any] = {"seeds": [seeds[0], seeds[-1]], "count": len(seeds),
                              "space": settings.space, "steps": steps,
                              "distance": describe_distance(distance),
                              "feature_level": settings.feature_level,
                              "precision": str(search_dtype(generator, renderer.device)).split(".")[-1],
                              "starts": {}}
    for number, (name, (start, start_settings)) in enumerate(starts.items()):
        offset = number * len(seeds)
        projected = project_pictures(
            renderer, targets, start_settings, start, distance,
            progress=progress and (lambda done, _n, o=offset: progress(o + done, total)),
            executor_for=executor_for)
        report["starts"][name] = projection_figures(renderer, classifier, projected, recipes)
        report["pictures_at_once"] = projected.pictures_at_once
    return report


def describe_distance(distance: PerceptualDistance) -> str:
    networks = "".join(f" + {type(network).__name__} features" for network in distance.networks)
    return f"{distance.pixels_description}{networks}"


def format_projection_report(report: dict[str, Any]) -> str:
    lines = [f"Projection of {report['count']} renders of the procedural renderer (seeds "
             f"{report['seeds'][0]}-{report['seeds'][1]}), {report['steps']} steps in "
             f"{report['space'].upper()} each{_search_text(report)}; distance: {report['distance']}; "
             f"each on one thread, {report['pictures_at_once']} at once"]
    starts = report["starts"]
    names = list(starts)
    lines.append(f"{'':<34}" + "".join(f"{name:>17}" for name in names) + "      aim")

    def row(label: str, values: list[str], aim: str) -> None:
        lines.append(f"{label:<34}" + "".join(f"{v:>17}" for v in values) + f"  {aim}")

    row("PSNR", [f"{starts[n]['psnr_db']:.1f} dB" for n in names], f">= {AIMS['psnr_db']:.0f} dB")
    for attribute in AGREEMENT_ATTRIBUTES:
        row(f"agreement, {attribute}", [f"{starts[n]['agreement'][attribute]:.1%}" for n in names],
            f">= {AIMS['agreement']:.0%}")
    row("seconds per picture", [f"{starts[n]['seconds_per_image']:.1f} s" for n in names],
        f"<= {AIMS['seconds_per_image']:.0f} s")
    row("  processor time per picture", [f"{starts[n]['cpu_seconds_per_image']:.1f} s" for n in names], "")
    for goal in RECIPE_GOALS:
        scores = [starts[n]["recipes"][goal] for n in names]
        row(f"{goal}: projections edited", [str(s["count"]) for s in scores], "")
        row(f"{goal}: flip rate", [_share(s, "flip_rate") for s in scores],
            f">= {AIMS['flip_rate']:.0%}")
        row(f"{goal}: locality", [_share(s, "locality") for s in scores],
            f">= {AIMS['locality']:.0%}")
    morphs = [starts[n]["morph"] for n in names]
    row(f"morph midpoints read with p >= {CONFIDENCE}", [_share(m, "confident") for m in morphs],
        f">= {AIMS['morph_confident']:.0%} (of {morphs[0]['pairs']} pairs)")
    return "\n".join(lines)


def _search_text(report: dict[str, Any]) -> str:
    """", in bfloat16, loudness held (0.005)" as far as the report says (older ones do not)."""
    parts = [f"in {report['precision']}"] if report.get("precision") else []
    if report.get("feature_level"):
        parts.append(f"loudness held ({report['feature_level']:g})")
    return "".join(f", {part}" for part in parts)


def _share(scores: dict[str, Any], key: str) -> str:
    return f"{scores[key]:.1%}" if key in scores else "-"  # 28 of 33 is 84.8%, not "85%"

