"""Latent vectors: seeds drawn exactly as NVlabs' gen_images.py draws them, class labels, blending."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

import numpy as np

MAX_SEED = 2**32 - 1  # np.random.RandomState accepts seeds in [0, 2**32)
_RANGE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")
_SINGLE = re.compile(r"^\s*(\d+)\s*$")


class LatentError(ValueError):
    """A seed list, class label or latent the user gave cannot be used; one line says why."""


def z_from_seed(seed: int, z_dim: int) -> np.ndarray:
    """(1, z_dim) float32: ``np.random.RandomState(seed).randn(1, z_dim)``, as gen_images.py does.

    NVlabs' mapping network casts z to float32 before anything else, so casting here is exact.
    """
    if not 0 <= int(seed) <= MAX_SEED:
        raise LatentError(f"seed {seed} is out of range (0 to {MAX_SEED})")
    return np.random.RandomState(int(seed)).randn(1, z_dim).astype(np.float32)


def parse_seeds(text: str) -> list[int]:
    """"0,3,10-20" -> [0, 3, 10, 11, ..., 20] (ranges inclusive, order kept, like NVlabs' num_range)."""
    seeds: list[int] = []
    for part in str(text).split(","):
        single, span = _SINGLE.match(part), _RANGE.match(part)
        if single:
            seeds.append(int(single.group(1)))
        elif span:
            first, last = int(span.group(1)), int(span.group(2))
            if last < first:
                raise LatentError(f"seed range {part.strip()!r} runs backwards; write {last}-{first}")
            seeds.extend(range(first, last + 1))
        else:
            raise LatentError(f"cannot read seeds {text!r}: {part.strip()!r} is not a number or a "
                              "range like 10-20 (use e.g. 0,3,10-20)")
    too_big = [s for s in seeds if s > MAX_SEED]
    if too_big:
        raise LatentError(f"seed {too_big[0]} is out of range (0 to {MAX_SEED})")
    return seeds


def class_vector(class_index: int | None, c_dim: int) -> np.ndarray | None:
    """One-hot (1, c_dim) float32 label for a conditional model; None for an unconditional one."""
    if c_dim == 0:
        if class_index is not None:
            raise LatentError(f"this model is unconditional; a class ({class_index}) cannot be used")
        return None
    if class_index is None:
        raise LatentError(f"this model is conditional: choose a class from 0 to {c_dim - 1}")
    if not 0 <= class_index < c_dim:
        raise LatentError(f"class {class_index} is out of range; this model has classes 0 to {c_dim - 1}")
    label = np.zeros((1, c_dim), dtype=np.float32)
    label[0, class_index] = 1.0
    return label


def lerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Straight line from ``a`` (t=0) to ``b`` (t=1): the usual way to blend in W.  Both ends are
    exact (``a + (b - a) * t`` misses ``b`` by a rounding), so a keyframe's frame renders as it."""
    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    t = np.float32(t)
    return (a * (np.float32(1) - t) + b * t).astype(np.float32)


def slerp(a: np.ndarray, b: np.ndarray, t: float, eps: float = 1e-7) -> np.ndarray:
    """Spherical blend along the last axis: the usual way to blend Gaussian z vectors.

    The angle is measured between the directions of ``a`` and ``b`` and the length is blended
    linearly, so the path keeps the typical norm of a Gaussian sample; (nearly) parallel vectors
    fall back to ``lerp``.
    """
    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    norm_a = np.linalg.norm(a64, axis=-1, keepdims=True)
    norm_b = np.linalg.norm(b64, axis=-1, keepdims=True)
    unit_a = a64 / np.maximum(norm_a, eps)
    unit_b = b64 / np.maximum(norm_b, eps)
    cos = np.clip(np.sum(unit_a * unit_b, axis=-1, keepdims=True), -1.0, 1.0)
    omega = np.arccos(cos)
    sin = np.sin(omega)
    parallel = sin < 1e-6
    safe_sin = np.where(parallel, 1.0, sin)
    weight_a = np.where(parallel, 1.0 - t, np.sin((1.0 - t) * omega) / safe_sin)
    weight_b = np.where(parallel, t, np.sin(t * omega) / safe_sin)
    direction = weight_a * unit_a + weight_b * unit_b
    length = (1.0 - t) * norm_a + t * norm_b
    out = np.where(parallel, (1.0 - t) * a64 + t * b64, direction * length)
    return out.astype(np.float32)


@dataclasses.dataclass(frozen=True)
class LatentGaussian:
    """A Gaussian over W fitted to some latents: new portraits "like these"."""

    mean: np.ndarray  # (w_dim,)
    covariance: np.ndarray  # (w_dim, w_dim), the unbiased sample covariance

    def sample(self, count: int, *, seed: int = 0, shrink: float = 0.0) -> np.ndarray:
        """(count, w_dim) float32 draws; ``shrink`` in [0, 1] scales their distance from the mean by
        ``1 - shrink`` (few latents give a rough covariance whose far draws look odd)."""
        if not 0.0 <= shrink <= 1.0:
            raise LatentError(f"shrink must be between 0 and 1, got {shrink}")
        values, vectors = np.linalg.eigh(self.covariance)
        root = vectors * np.sqrt(np.clip(values, 0.0, None))  # root @ root.T == covariance
        normal = np.random.default_rng(seed).standard_normal((count, len(self.mean)))
        return (self.mean + (1.0 - shrink) * normal @ root.T).astype(np.float32)


def fit_gaussian(latents: Sequence[np.ndarray]) -> LatentGaussian:
    """Mean and covariance in W of at least two latents, each (w_dim,) or W+ (num_ws, w_dim),
    which counts as its mean row; with fewer latents than dimensions the draws stay in the space
    the latents span."""
    if len(latents) < 2:
        raise LatentError(f"fitting a Gaussian needs at least two latents, got {len(latents)}")
    rows = np.stack([np.asarray(w, dtype=np.float64) if np.ndim(w) == 1
                     else np.asarray(w, dtype=np.float64).mean(axis=0) for w in latents])
    return LatentGaussian(mean=rows.mean(axis=0), covariance=np.cov(rows, rowvar=False))
