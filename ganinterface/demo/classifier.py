"""The attribute classifier: a small CNN that reads a portrait's attributes back from its pixels.

It is the measuring instrument for the built-in generator and for edits: does a sample have an open
mouth, a hair band, which hair colour?  It is trained only on freshly rendered portraits (an endless
supply, so it cannot overfit a finite set), degraded at random with blur, resampling, noise and JPEG
so that it also reads the softer images a GAN makes.

Architecture: five strided or plain 3x3 convolutions with batch norm and ReLU (128x64 -> 8x4),
average and max pooling concatenated, one linear layer to a 128-dimensional feature vector (what
`features` returns, used for Fréchet distances), and one linear head per attribute.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from ganinterface import bundled
from ganinterface.demo import portraits

__all__ = ["ATTRIBUTES", "AttributeClassifier", "TrainSettings", "classify",
           "degrade", "features", "label_indices", "load_classifier", "train"]

log = logging.getLogger(__name__)

FORMAT = "ganinterface.attribute-classifier"
INPUT_SIZE = (128, 64)

ATTRIBUTES: dict[str, tuple[str, ...]] = {
    # attribute -> class names, in the order of the head's outputs
    "mouth_open": ("closed", "open"),
    "hair_band": ("absent", "present"),
    "hair_colour": tuple(portraits.HAIR_COLOURS),
    "fringe": tuple(portraits.FRINGES),
    "eye_colour": tuple(portraits.EYE_COLOURS),
    "skin_tone": tuple(portraits.SKIN_TONES),
    "clothing_colour": tuple(portraits.CLOTHING_COLOURS),
    "background": tuple(portraits.BACKGROUNDS),
}
HELD_OUT_SEED_BASE = 3_000_000_000  # training seeds count up from 0, far below these


def label_indices(labels: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Renderer labels -> class index per attribute, (N,) int64 each."""
    indices = {}
    for name, classes in ATTRIBUTES.items():
        values = [label[name] for label in labels]
        if classes[0] in ("closed", "absent"):  # boolean attributes: index 1 means present/open
            indices[name] = np.array([int(bool(v)) for v in values], np.int64)
        else:
            indices[name] = np.array([classes.index(v) for v in values], np.int64)
    return indices


class AttributeClassifier(nn.Module):
    def __init__(self, channels: Sequence[int] = (24, 48, 48, 96, 96, 128), feature_dim: int = 128,
                 attributes: dict[str, Sequence[str]] | None = None) -> None:
        super().__init__()
        self.channels = tuple(channels)
        self.feature_dim = feature_dim
        self.attributes = {k: tuple(v) for k, v in (attributes or ATTRIBUTES).items()}
        layers: list[nn.Module] = []
        previous = 3
        for index, width in enumerate(self.channels):
            stride = 1 if index in (2, 4) else 2  # downsample except on the two plain layers
            layers += [nn.Conv2d(previous, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU(inplace=True)]
            previous = width
        self.body = nn.Sequential(*layers)
        self.embed = nn.Linear(2 * previous, feature_dim)
        self.heads = nn.ModuleDict({name: nn.Linear(feature_dim, len(classes))
                                    for name, classes in self.attributes.items()})

    def config(self) -> dict[str, Any]:
        return {"channels": list(self.channels), "feature_dim": self.feature_dim,
                "attributes": {k: list(v) for k, v in self.attributes.items()}}

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1] -> (N, feature_dim) penultimate features."""
        maps = self.body(x)
        pooled = torch.cat([maps.mean(dim=(2, 3)), maps.amax(dim=(2, 3))], dim=1)
        return torch.relu(self.embed(pooled))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        embedding = self.embedding(x)
        return {name: head(embedding) for name, head in self.heads.items()}

    @torch.no_grad()
    def classify(self, images: np.ndarray, batch: int = 256) -> dict[str, np.ndarray]:
        """uint8 (N, H, W, 3) RGB -> {attribute: probabilities (N, classes)} float32."""
        chunks = [
            {name: torch.softmax(logits, 1).numpy() for name, logits in self(x).items()}
            for x in self._batches(images, batch)
        ]
        return {name: np.concatenate([c[name] for c in chunks]).astype(np.float32)
                for name in self.attributes}

    @torch.no_grad()
    def features(self, images: np.ndarray, batch: int = 256) -> np.ndarray:
        """uint8 (N, H, W, 3) RGB -> (N, feature_dim) float32 penultimate features."""
        return np.concatenate([self.embedding(x).numpy() for x in self._batches(images, batch)]
                              ).astype(np.float32)

    def _batches(self, images: np.ndarray, batch: int):
        images = _checked_images(images)
        self.eval()
        for start in range(0, len(images), batch):
            yield to_tensor(images[start:start + batch])


def _checked_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3 or len(images) == 0:
        raise ValueError(f"expected uint8 images (N, H, W, 3) with N >= 1, got {images.dtype} "
                         f"{images.shape}")
    height, width = images.shape[1:3]
    if (height, width) == INPUT_SIZE:
        return images
    if height != 2 * width:
        raise ValueError(f"the classifier reads 2:1 portraits ({INPUT_SIZE[1]} × {INPUT_SIZE[0]} px), "
                         f"got {width} × {height} px")
    size = (INPUT_SIZE[1], INPUT_SIZE[0])
    return np.stack([cv2.resize(image, size, interpolation=cv2.INTER_AREA) for image in images])


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W) in [-1, 1], the generator's range."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


# ----------------------------------------------------------------------------------------------
# Saving and loading
# ----------------------------------------------------------------------------------------------
def save_classifier(model: AttributeClassifier, path: Path, report: dict[str, Any]) -> None:
    """Weights (config embedded in the safetensors metadata) and a JSON report, both atomically."""
    from safetensors.torch import save

    from ganinterface.atomic import atomic_write_bytes, atomic_write_text

    metadata = {"format": FORMAT, "version": "1", "config": json.dumps(model.config())}
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, save(tensors, metadata=metadata))
    sidecar = {"format": FORMAT, "version": 1, "config": model.config(), **report}
    atomic_write_text(path.with_suffix(".json"), json.dumps(sidecar, indent=2) + "\n")


def load_classifier(path: str | Path | None = None) -> AttributeClassifier:
    """The shipped classifier, or one saved by `train-classifier`; eval mode, CPU."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    path = Path(path) if path is not None else bundled.classifier_checkpoint()
    try:
        with safe_open(str(path), "pt") as handle:
            metadata = handle.metadata() or {}
        if metadata.get("format") != FORMAT:
            raise ValueError(f"{path}: not an attribute classifier (format {metadata.get('format')!r})")
        model = AttributeClassifier(**json.loads(metadata["config"]))
        model.load_state_dict(load_file(str(path)))
    except (OSError, SafetensorError, KeyError, RuntimeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: cannot load the attribute classifier: {error}") from None
    return model.eval()


_default_model: AttributeClassifier | None = None


def _default() -> AttributeClassifier:
    global _default_model
    if _default_model is None:
        _default_model = load_classifier()
    return _default_model


def classify(images: np.ndarray, model: AttributeClassifier | None = None) -> dict[str, np.ndarray]:
    """`AttributeClassifier.classify` with the shipped weights unless a model is given."""
    return (model or _default()).classify(images)


def features(images: np.ndarray, model: AttributeClassifier | None = None) -> np.ndarray:
    """`AttributeClassifier.features` with the shipped weights unless a model is given."""
    return (model or _default()).features(images)


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainSettings:
    steps: int = 1500            # optimiser steps
    batch: int = 48              # fresh renders per step
    learning_rate: float = 2e-3  # Adam, cosine-decayed to 2% over the run
    weight_decay: float = 1e-4
    degrade_share: float = 0.7   # share of training images degraded (blur, resampling, noise, JPEG)
    held_out: int = 2000         # fresh renders (seeds from HELD_OUT_SEED_BASE) for the report
    threads: int = 1             # torch CPU threads
    seed: int = 0


def degrade(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Soften a render the way GAN samples are soft: blur, resampling, noise and JPEG, at random."""
    out = image
    if rng.random() < 0.5:
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.4, 1.3)))
    if rng.random() < 0.3:
        height, width = out.shape[:2]
        factor = rng.uniform(0.45, 0.8)
        small = cv2.resize(out, (max(1, round(width * factor)), max(1, round(height * factor))),
                           interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.4:
        noise = rng.normal(0.0, rng.uniform(1.0, 8.0), out.shape)
        out = np.clip(out + noise, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        quality = int(rng.integers(35, 91))
        ok, encoded = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            out = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    return out


def blur_for_evaluation(images: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    return np.stack([cv2.GaussianBlur(image, (0, 0), sigma) for image in images])


def accuracy(model: AttributeClassifier, images: np.ndarray,
             labels: Sequence[dict[str, Any]]) -> dict[str, float]:
    truth = label_indices(labels)
    probabilities = model.classify(images)
    return {name: float(np.mean(probabilities[name].argmax(1) == truth[name])) for name in ATTRIBUTES}


def train(settings: TrainSettings, out: Path) -> dict[str, Any]:
    """Train from scratch on fresh renders, report held-out accuracy, save weights and JSON."""
    threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        return _train(settings, out)
    finally:
        torch.set_num_threads(threads)


def _train(settings: TrainSettings, out: Path) -> dict[str, Any]:
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    model = AttributeClassifier()
    optimiser = torch.optim.AdamW(model.parameters(), settings.learning_rate,
                                  weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * step / settings.steps)))
    loss_fn = nn.CrossEntropyLoss()
    started = time.perf_counter()
    model.train()
    for step in range(settings.steps):
        first = settings.seed * 10_000_000 + step * settings.batch
        images, labels = portraits.render_batch(range(first, first + settings.batch))
        images = np.stack([degrade(image, rng) if rng.random() < settings.degrade_share else image
                           for image in images])
        truth = {k: torch.from_numpy(v) for k, v in label_indices(labels).items()}
        logits = model(to_tensor(images))
        loss = sum(loss_fn(logits[name], truth[name]) for name in ATTRIBUTES)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        if step % 100 == 0 or step == settings.steps - 1:
            log.info("step %d/%d loss %.4f (%.0f s)", step, settings.steps, loss.item(),
                     time.perf_counter() - started)
    seconds = time.perf_counter() - started
    model.eval()
    held_out, held_out_labels = portraits.render_batch(
        range(HELD_OUT_SEED_BASE, HELD_OUT_SEED_BASE + settings.held_out))
    report = {
        "accuracy": accuracy(model, held_out, held_out_labels),
        "accuracy_blurred": accuracy(model, blur_for_evaluation(held_out), held_out_labels),
        "held_out": {"count": settings.held_out, "first_seed": HELD_OUT_SEED_BASE,
                     "blur": "Gaussian sigma 1.0 pixel for accuracy_blurred"},
        "images_seen": settings.steps * settings.batch,
        "training_seconds": round(seconds, 1),
        "settings": dataclasses.asdict(settings),
        "input_size": list(INPUT_SIZE),
        "torch": torch.__version__,
    }
    save_classifier(model, out, report)
    log.info("saved %s", out)
    return report
