"""Generator samples and what the attribute classifier reads in them: what the search learns from
and tunes on, and what the edit report scores against."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from ganinterface.demo.classifier import AttributeClassifier
from ganinterface.engine.latents import z_from_seed
from ganinterface.engine.pixels import to_uint8_image
from ganinterface.models.base import GeneratorBase, LayerInfo

if TYPE_CHECKING:
    from ganinterface.engine.renderer import Renderer
    from ganinterface.export.batch import Chunk, ExecutorFor, Outcome

Progress = Callable[[int, int], None]

FINDING_SEED_BASE = 1_000_000  # finding and tuning seeds; the edit report defaults to seeds 0-199
CONFIDENT = 0.9


@dataclasses.dataclass
class Samples:
    """Generator samples with what the classifier reads in them and their feature maps."""

    seeds: list[int]
    ws: np.ndarray  # (N, num_ws, w_dim)
    images: np.ndarray  # (N, H, W, 3) uint8
    probabilities: dict[str, np.ndarray]
    features: dict[str, np.ndarray]  # layer -> (N, C, h, w)
    layers: dict[str, LayerInfo]  # the layers of ``features``

    def with_state(self, attribute: str, state: int) -> np.ndarray:
        """Indices of samples confidently read as ``state`` of ``attribute``."""
        return np.flatnonzero(self.probabilities[attribute][:, state] >= CONFIDENT)


def draw_samples(generator: GeneratorBase, classifier: AttributeClassifier, seeds: Sequence[int],
                 layers: Sequence[str], batch: int = 32, progress: Progress | None = None,
                 executor_for: "ExecutorFor | None" = None) -> Samples:
    """The samples of ``seeds`` with the features of ``layers``, drawn here or, with
    ``executor_for``, as a batch job (the same batches, so the same samples); the classifier reads
    them here."""
    if executor_for is None:
        drawn = _draw(generator, seeds, layers, batch, progress)
    else:
        drawn = _draw_on(executor_for, seeds, layers, batch, progress)
    ws, images, features = drawn
    return Samples(list(seeds), ws, images, classifier.classify(images), features,
                   {layer: generator.layers[generator.layer_index(layer)] for layer in layers})


Drawn = tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]  # ws, images, layer -> features


@torch.no_grad()
def _draw(generator: GeneratorBase, seeds: Sequence[int], layers: Sequence[str], batch: int,
          progress: Progress | None) -> Drawn:
    device = next(generator.parameters()).device
    ws_all, images, features = [], [], {layer: [] for layer in layers}
    for start in range(0, len(seeds), batch):
        chunk = seeds[start:start + batch]
        z = torch.from_numpy(np.concatenate([z_from_seed(s, generator.z_dim) for s in chunk])).to(device)
        ws = generator.mapping(z, None)
        out = generator.synthesize(ws, taps=layers, noise_mode="const")
        ws_all.append(ws.cpu().numpy())
        images.extend(to_uint8_image(raw) for raw in out.image)
        for layer in layers:
            features[layer].append(out.taps[layer].float().cpu().numpy())
        if progress:
            progress(min(start + batch, len(seeds)), len(seeds))
    return (np.concatenate(ws_all), np.stack(images),
            {layer: np.concatenate(parts) for layer, parts in features.items()})


@dataclasses.dataclass(frozen=True)
class Drawing:
    """``_draw`` as a batch job's task: each item a seed, its file an ``.npz`` of its w, image and
    features; chunks hold whole batches from the first seed on, as ``_draw`` batches them."""

    layers: tuple[str, ...]
    batch_size: int

    def run_chunk(self, renderer: "Renderer", chunk: "Chunk", cancel=None) -> "list[Outcome]":
        from ganinterface.export.batch import Outcome

        ws, images, features = _draw(renderer.generator, [seed for _, seed in chunk], self.layers,
                                     self.batch_size, None)
        outcomes = []
        for row, (index, _) in enumerate(chunk):
            buffer = io.BytesIO()
            np.savez(buffer, w=ws[row], image=images[row],
                     **{f"feature:{layer}": features[layer][row] for layer in self.layers})
            outcomes.append(Outcome(index, (buffer.getvalue(),)))
        return outcomes


def _draw_on(executor_for: "ExecutorFor", seeds: Sequence[int], layers: Sequence[str], batch: int,
             progress: Progress | None) -> Drawn:
    from ganinterface.export.batch import gather
    from ganinterface.export.progress import no_progress

    task = Drawing(tuple(layers), batch)
    drawn = [np.load(io.BytesIO(data), allow_pickle=False) for data in
             gather(executor_for(task, len(seeds)), seeds, task, progress=progress or no_progress)]
    return (np.stack([sample["w"] for sample in drawn]), np.stack([sample["image"] for sample in drawn]),
            {layer: np.stack([sample[f"feature:{layer}"] for sample in drawn]) for layer in layers})
