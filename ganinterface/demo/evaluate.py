"""Quality report for a portrait generator, measured with the attribute classifier.

* ``confident_share``: share of samples the classifier reads with max probability >= 0.9 on both
  mouth and hair band (a sample with a half-drawn mouth is read with doubt);
* ``attribute_frequency``: per attribute and class, its share among samples and among renders;
* ``frechet``: Fréchet distance on the classifier's penultimate features between samples and
  renders, beside two calibration distances (renders vs. other renders; renders vs. blurred renders)
  that say what "close" and "visibly blurry" look like on this scale.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ganinterface.demo import portraits
from ganinterface.demo.classifier import (HELD_OUT_SEED_BASE, AttributeClassifier, blur_for_evaluation,
                                          label_indices)
from ganinterface.demo.frechet import frechet_distance
from ganinterface.engine.latents import z_from_seed
from ganinterface.engine.pixels import to_uint8_image
from ganinterface.models.base import GeneratorBase

if TYPE_CHECKING:
    from ganinterface.engine.renderer import Renderer
    from ganinterface.export.batch import Chunk, ExecutorFor, Outcome

CONFIDENCE = 0.9
CONFIDENT_ATTRIBUTES = ("mouth_open", "hair_band")
# Renders for the report come from a seed range of their own, apart from training and classifier data.
REPORT_RENDER_SEED_BASE = HELD_OUT_SEED_BASE + 500_000_000

Progress = Callable[[int, int], None]
SAMPLE_BATCH = 32  # samples rendered in one pass


@torch.no_grad()
def sample_images(generator: GeneratorBase, seeds: Sequence[int], truncation_psi: float = 1.0,
                  batch: int = SAMPLE_BATCH, device: torch.device | str = "cpu",
                  progress: Progress | None = None) -> np.ndarray:
    """uint8 (N, H, W, 3) samples for ``seeds`` (z drawn as NVlabs' gen_images.py does)."""
    generator = generator.to(device).eval()
    images = []
    for start in range(0, len(seeds), batch):
        chunk = seeds[start:start + batch]
        z = torch.from_numpy(np.concatenate([z_from_seed(s, generator.z_dim) for s in chunk])).to(device)
        ws = generator.mapping(z, None, truncation_psi=truncation_psi)
        raw = generator.synthesize(ws, noise_mode="const").image
        images.extend(to_uint8_image(image) for image in raw)
        if progress:
            progress(min(start + batch, len(seeds)), len(seeds))
    return np.stack(images)


@dataclasses.dataclass(frozen=True)
class Sampling:
    """``sample_images`` as a batch job's task: each item a seed, its file its sample as uint8
    ``.npy``.  Chunks hold whole batches from the first seed on, so the batches, and the images,
    are those of ``sample_images`` over all the seeds."""

    truncation_psi: float = 1.0
    batch_size: int = SAMPLE_BATCH

    def run_chunk(self, renderer: "Renderer", chunk: "Chunk", cancel=None) -> "list[Outcome]":
        from ganinterface.export.batch import Outcome, npy_bytes

        images = sample_images(renderer.generator, [seed for _, seed in chunk], self.truncation_psi,
                               self.batch_size, renderer.device)
        return [Outcome(index, (npy_bytes(image, np.uint8),))
                for (index, _), image in zip(chunk, images)]


def sampled_on(executor_for: "ExecutorFor", seeds: Sequence[int], truncation_psi: float = 1.0,
               progress: Progress | None = None) -> np.ndarray:
    """``sample_images`` of ``seeds``, drawn as a batch job where ``executor_for`` says."""
    from ganinterface.export.batch import gather
    from ganinterface.export.progress import no_progress

    task = Sampling(truncation_psi)
    files = gather(executor_for(task, len(seeds)), seeds, task, progress=progress or no_progress)
    return np.stack([np.load(io.BytesIO(data), allow_pickle=False) for data in files])


def _frequencies(indices: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    counts = np.bincount(indices, minlength=len(classes)) / max(len(indices), 1)
    return {name: round(float(share), 4) for name, share in zip(classes, counts)}


def confident(probabilities: dict[str, np.ndarray]) -> np.ndarray:
    """Per image: read with probability >= CONFIDENCE on every attribute of CONFIDENT_ATTRIBUTES."""
    return np.all([probabilities[name].max(axis=1) >= CONFIDENCE for name in CONFIDENT_ATTRIBUTES],
                  axis=0)


def quality_report(generator: GeneratorBase, classifier: AttributeClassifier, seeds: Sequence[int],
                   truncation_psi: float = 1.0, device: torch.device | str = "cpu",
                   progress: Progress | None = None,
                   executor_for: "ExecutorFor | None" = None) -> dict[str, Any]:
    """The report on the samples of ``seeds``, drawn here or, with ``executor_for``, as a batch
    job (``sampled_on``); they are read by the classifier here."""
    if executor_for is None:
        samples = sample_images(generator, seeds, truncation_psi, device=device, progress=progress)
    else:
        samples = sampled_on(executor_for, seeds, truncation_psi, progress)
    count = len(seeds)
    renders, labels = portraits.render_batch(range(REPORT_RENDER_SEED_BASE,
                                                   REPORT_RENDER_SEED_BASE + count),
                                             generator.img_height, generator.img_width)
    others, _ = portraits.render_batch(range(REPORT_RENDER_SEED_BASE + count,
                                             REPORT_RENDER_SEED_BASE + 2 * count),
                                       generator.img_height, generator.img_width)
    probabilities = classifier.classify(samples)
    render_truth = label_indices(labels)
    frequency = {
        name: {"samples": _frequencies(probabilities[name].argmax(axis=1), classes),
               "renders": _frequencies(render_truth[name], classes)}
        for name, classes in classifier.attributes.items()
    }
    sample_features = classifier.features(samples)
    render_features = classifier.features(renders)
    frechet = {
        "samples_vs_renders": frechet_distance(sample_features, render_features),
        "renders_vs_renders": frechet_distance(classifier.features(others), render_features),
        "renders_vs_blurred": frechet_distance(classifier.features(blur_for_evaluation(others)),
                                               render_features),
    }
    return {
        "samples": count,
        "seeds": [int(seeds[0]), int(seeds[-1])] if count else [],
        "truncation_psi": truncation_psi,
        "confident_share": round(float(confident(probabilities).mean()), 4),
        # calibration: the same share on renders, whose every mouth and band is drawn clearly
        "confident_share_renders": round(float(confident(classifier.classify(renders)).mean()), 4),
        "confident_share_by_attribute": {
            name: round(float((probabilities[name].max(axis=1) >= CONFIDENCE).mean()), 4)
            for name in CONFIDENT_ATTRIBUTES},
        "attribute_frequency": frequency,
        "largest_frequency_gap_points": round(max(
            abs(f["samples"][k] - f["renders"][k]) * 100
            for f in frequency.values() for k in f["samples"]), 1),
        "frechet": {k: round(v, 3) for k, v in frechet.items()},
    }


def format_report(report: dict[str, Any]) -> str:
    lines = [f"Samples: {report['samples']} (seeds {report['seeds'][0]}-{report['seeds'][1]}, "
             f"psi {report['truncation_psi']})",
             f"Confidently classified (p >= {CONFIDENCE} on mouth and hair band): "
             f"{report['confident_share']:.1%}  (aim >= 90%; renders "
             f"{report['confident_share_renders']:.1%})"]
    for name, share in report["confident_share_by_attribute"].items():
        lines.append(f"  {name:<12} {share:.1%}")
    lines.append("Attribute frequency, samples vs. renders (aim within 10 points):")
    for name, freq in report["attribute_frequency"].items():
        parts = ", ".join(f"{k} {freq['samples'][k]:.0%}/{freq['renders'][k]:.0%}" for k in freq["samples"])
        lines.append(f"  {name:<16} {parts}")
    lines.append(f"  largest gap: {report['largest_frequency_gap_points']} points")
    lines += frechet_reading(report["frechet"], report["samples"])
    return "\n".join(lines)


def frechet_reading(frechet: dict[str, float], samples: int) -> list[str]:
    """The Fréchet distance with the two calibration distances that give it a scale, and a verdict."""
    distance, renders, blurred = (frechet["samples_vs_renders"], frechet["renders_vs_renders"],
                                  frechet["renders_vs_blurred"])
    if distance <= renders:
        verdict = "as close as another set of renders: the classifier cannot tell samples from renders"
    elif distance <= blurred:
        verdict = "closer than blurred renders: small differences remain"
    else:
        times = f"{distance / blurred:.1f}x as far as" if blurred > 0 else "further than"
        verdict = f"{times} blurred renders: samples are still easy to tell from renders"
    return [f"Fréchet distance of the samples to renders: {distance:.1f} (on the classifier's "
            "features; lower is better)",
            f"  for scale, with {samples} of each: another set of renders {renders:.1f} "
            f"(about the best a generator can score), blurred renders {blurred:.1f}",
            f"  reading: {verdict}"]
