"""Generator samples and what the attribute classifier reads in them: what the search learns from
and tunes on, and what the edit report scores against."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
import torch

from ganinterface.demo.classifier import AttributeClassifier
from ganinterface.engine.latents import z_from_seed
from ganinterface.engine.renderer import to_uint8_image
from ganinterface.models.base import GeneratorBase, LayerInfo

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


@torch.no_grad()
def draw_samples(generator: GeneratorBase, classifier: AttributeClassifier, seeds: Sequence[int],
                 layers: Sequence[str], batch: int = 32, progress: Progress | None = None) -> Samples:
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
    images_array = np.stack(images)
    return Samples(list(seeds), np.concatenate(ws_all), images_array, classifier.classify(images_array),
                   {layer: np.concatenate(parts) for layer, parts in features.items()},
                   {layer: generator.layers[generator.layer_index(layer)] for layer in layers})
