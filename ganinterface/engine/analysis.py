"""Finding the channels behind a feature, and where a feature is on a portrait.

* ``rank_channels``: which channels of a layer are more active inside a region than outside it.
* ``propose_feature_edit``: from examples with and without a feature (e.g. mouths open vs. closed),
  the channels and signed amounts that turn one into the other inside the region.
* ``locate_peak`` / ``anchor_from``: where a set of channels peaks (soft centroid) and how wide,
  which anchored edits use to follow the feature onto another portrait (``follow_anchor``).

Coordinates are normalised like masks: x = (column + 0.5) / width, y = (row + 0.5) / height; spreads
are in image heights.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ganinterface.engine.kinds.feature import FeatureEdit
from ganinterface.engine.masks import image_margin
from ganinterface.engine.scene import Anchor, Mask
from ganinterface.models.base import LayerInfo

PEAK_PERCENTILE = 90.0  # only the top 10% of the map weighs in the centroid
PEAK_WINDOW = 0.25  # ... and only within this many image heights of the strongest point


class AnalysisError(ValueError):
    """Features and region do not fit together; the message says how."""


@dataclasses.dataclass(frozen=True)
class ChannelScore:
    channel: int
    score: float  # (inside - outside) / channel std: how much more active inside, in std units
    inside: float  # mean activation inside the region (mask-weighted)
    outside: float  # mean activation outside it


@dataclasses.dataclass(frozen=True)
class Peak:
    x: float
    y: float
    spread: float


def _as_batch(features: np.ndarray, what: str = "features") -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    if features.ndim == 3:
        features = features[None]
    if features.ndim != 4:
        raise AnalysisError(f"{what} must be (C, h, w) or (N, C, h, w), got shape {features.shape}")
    return features


def fit_region(region: np.ndarray, height: int, width: int) -> np.ndarray:
    """The region as float weights in [0, 1] at (height, width), shrunk/enlarged by area if needed."""
    region = np.clip(np.asarray(region, dtype=np.float32), 0.0, 1.0)
    if region.ndim != 2:
        raise AnalysisError(f"region must be a 2-D mask, got shape {region.shape}")
    if region.shape != (height, width):
        import cv2  # here, not at the top: OpenCV's import is ~5% of the window's start-up

        shrinking = region.shape[0] >= height and region.shape[1] >= width
        interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
        region = cv2.resize(region, (width, height), interpolation=interpolation)
    return region.astype(np.float64)


def _region_means(features: np.ndarray, region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mask-weighted mean per (N, C) inside and outside; NaN where a side has no weight."""
    inside_weight, outside_weight = region.sum(), (1.0 - region).sum()
    if inside_weight <= 0 or outside_weight <= 0:
        raise AnalysisError("the region must cover part of the layer, not none or all of it")
    inside = np.einsum("nchw,hw->nc", features, region) / inside_weight
    outside = np.einsum("nchw,hw->nc", features, 1.0 - region) / outside_weight
    return inside, outside


def rank_channels(features: np.ndarray, region: np.ndarray) -> list[ChannelScore]:
    """Channels sorted by (mean inside - mean outside) / std, most region-specific first.

    ``features`` (C, h, w) for one seed or (N, C, h, w) for several (means averaged over seeds, std
    over all seeds and pixels); ``region`` a soft mask, resized to (h, w) if it is not that size.
    """
    batch = _as_batch(features)
    region = fit_region(region, *batch.shape[2:])
    inside, outside = (m.mean(axis=0) for m in _region_means(batch, region))
    std = batch.transpose(1, 0, 2, 3).reshape(batch.shape[1], -1).std(axis=1)
    score = (inside - outside) / np.maximum(std, 1e-8)
    order = np.argsort(-score, kind="stable")
    return [ChannelScore(int(c), float(score[c]), float(inside[c]), float(outside[c])) for c in order]


@dataclasses.dataclass(frozen=True)
class FeatureEditProposal:
    """Channels whose mean inside the region differs most between the two example sets."""

    channels: tuple[int, ...]
    amounts: tuple[float, ...]  # mean(A) - mean(B) inside the region, per channel
    scores: tuple[float, ...]  # amounts divided by the channel's std (how the channels were chosen)

    def to_edits(self, layer: str, mask: Mask, strength: float = 1.0, per_channel: bool = False,
                 name: str = "") -> tuple[FeatureEdit, ...]:
        """FeatureEdits that apply the proposal: one per channel, or one per sign (mean amount)."""
        pairs = list(zip(self.channels, self.amounts))
        if per_channel:
            return tuple(FeatureEdit(layer, (c,), mask, strength * a, name=name) for c, a in pairs)
        edits = []
        for group in ([p for p in pairs if p[1] > 0], [p for p in pairs if p[1] < 0]):
            if group:
                amount = strength * float(np.mean([a for _, a in group]))
                edits.append(FeatureEdit(layer, tuple(c for c, _ in group), mask, amount, name=name))
        return tuple(edits)


def propose_feature_edit(features_a: np.ndarray, features_b: np.ndarray, region: np.ndarray,
                         top_k: int = 8) -> FeatureEditProposal:
    """Channels and signed amounts that make B-like examples A-like inside ``region``.

    ``features_a`` / ``features_b``: (N, C, h, w) (or (C, h, w)) activations of one layer for the
    examples that have the feature (A) and those that do not (B).  ``region`` is one soft mask for
    every example, or one per example (A's, then B's: (N_a + N_b, h, w)) where the feature sits in a
    different place on each: the amounts are then the class difference where an anchored edit lands,
    not diluted by a region wide enough for every portrait.  Channels are ranked by the difference of
    their region means divided by the channel's std over both sets.
    """
    a, b = _as_batch(features_a, "features_a"), _as_batch(features_b, "features_b")
    if a.shape[1:] != b.shape[1:]:
        raise AnalysisError(f"features_a {a.shape[1:]} and features_b {b.shape[1:]} differ in shape")
    regions = _example_regions(region, len(a), len(b), *a.shape[2:])
    difference = (_weighted_means(a, regions[:len(a)]).mean(axis=0)
                  - _weighted_means(b, regions[len(a):]).mean(axis=0))
    both = np.concatenate([a, b])
    std = both.transpose(1, 0, 2, 3).reshape(both.shape[1], -1).std(axis=1)
    score = difference / np.maximum(std, 1e-8)
    chosen = np.argsort(-np.abs(score), kind="stable")[:max(1, int(top_k))]
    return FeatureEditProposal(channels=tuple(int(c) for c in chosen),
                               amounts=tuple(float(difference[c]) for c in chosen),
                               scores=tuple(float(score[c]) for c in chosen))


def _example_regions(region: np.ndarray, count_a: int, count_b: int, height: int,
                     width: int) -> np.ndarray:
    """``region`` as (count_a + count_b, height, width) weights: shared, or one per example."""
    region = np.asarray(region)
    if region.ndim == 2:
        return np.broadcast_to(fit_region(region, height, width), (count_a + count_b, height, width))
    if region.ndim != 3 or len(region) != count_a + count_b:
        raise AnalysisError(f"region must be one 2-D mask or one per example ({count_a} + {count_b}), "
                            f"got shape {region.shape}")
    return np.stack([fit_region(r, height, width) for r in region])


def _weighted_means(features: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """(N, C) means of each example's channels weighted by its own region (N, h, w)."""
    weights = regions.sum(axis=(1, 2))
    if not np.all(weights > 0):
        raise AnalysisError("every example's region must cover part of the layer")
    return np.einsum("nchw,nhw->nc", features, regions) / weights[:, None]


def _box_blur3(values: np.ndarray) -> np.ndarray:
    padded = np.pad(values, 1, mode="reflect")  # "edge" would count a corner pixel four times
    h, w = values.shape
    return sum(padded[i:i + h, j:j + w] for i in range(3) for j in range(3)) / 9.0


def locate_peak(activation: np.ndarray, near: tuple[float, float, float] | None = None) -> Peak:
    """Soft centroid of an (h, w) map's strongest values near its maximum, and their spread.

    Robust to single hot pixels (the maximum is taken on a lightly blurred map) and to a second
    bright area elsewhere (only values within PEAK_WINDOW image heights of the maximum count).
    ``near`` = (x, y, reach): only values within ``reach`` image heights of (x, y) count, for the
    maximum and the centroid (at least the pixel nearest to (x, y)).
    """
    activation = np.nan_to_num(np.asarray(activation, dtype=np.float64))
    if activation.ndim != 2:
        raise AnalysisError(f"activation must be a 2-D map, got shape {activation.shape}")
    h, w = activation.shape
    ys = (np.arange(h) + 0.5) / h
    xs = (np.arange(w) + 0.5) / w
    aspect = w / h  # x distances in image heights: dx * aspect
    blurred = _box_blur3(activation)
    allowed = np.ones((h, w), dtype=bool)
    if near is not None:
        x, y, reach = near
        distance = np.hypot((xs[None, :] - x) * aspect, ys[:, None] - y)
        allowed = distance <= reach
        allowed.flat[np.argmin(distance)] = True
        blurred = np.where(allowed, blurred, -np.inf)
    py, px = np.unravel_index(np.argmax(blurred), activation.shape)
    window = allowed & (np.hypot((xs[None, :] - xs[px]) * aspect, ys[:, None] - ys[py]) <= PEAK_WINDOW)
    weights = np.maximum(activation - np.percentile(activation, PEAK_PERCENTILE), 0.0) * window
    if not weights.sum() > 0:  # nothing above the percentile near the peak: its plateau there
        weights = (window & (activation >= activation[window].max())).astype(np.float64)
    total = weights.sum()
    cx = float((weights.sum(axis=0) * xs).sum() / total)
    cy = float((weights.sum(axis=1) * ys).sum() / total)
    squared = ((xs[None, :] - cx) * aspect) ** 2 + (ys[:, None] - cy) ** 2
    # each pixel is a square 1/h high, not a point: add its own variance (1/12 of its side squared,
    # per axis), so one lit pixel has a spread and spreads agree across resolutions
    pixel_variance = 2.0 / (12.0 * h * h)
    variance = (weights * squared).sum() / total + pixel_variance
    return Peak(x=cx, y=cy, spread=float(np.sqrt(variance)))


def anchor_from(features: np.ndarray, channels: tuple[int, ...] | list[int], layer: str,
                follow_scale: bool = False) -> Anchor:
    """An Anchor at the peak of the mean of ``channels`` in ``features`` (C, h, w) of ``layer``."""
    batch = _as_batch(features)
    if len(batch) != 1:
        raise AnalysisError("anchor_from takes the features of the one portrait the edit was drawn on")
    channels = tuple(int(c) for c in channels)
    if not channels or min(channels) < 0 or max(channels) >= batch.shape[1]:
        raise AnalysisError(f"anchor channels {channels} must be within 0..{batch.shape[1] - 1}")
    peak = locate_peak(batch[0, list(channels)].mean(axis=0))
    return Anchor(layer=layer, channels=channels, x=peak.x, y=peak.y, spread=peak.spread,
                  follow_scale=follow_scale)


def anchored_mask(mask: Mask, anchor: Anchor, activation: np.ndarray) -> Mask:
    """``mask`` moved by (peak - anchor) on ``activation`` (C_anchor, h, w), scaled with the spread.

    Composes with the mask's own placement: the anchor's map q -> peak + r (q - anchor) is applied
    after the mask's p -> c + s (p - c) + d, keeping the centre c.
    """
    near = None if anchor.reach is None else (anchor.x, anchor.y, anchor.reach)
    peak = locate_peak(activation.mean(axis=0), near)
    ratio = 1.0
    if anchor.follow_scale and anchor.spread > 0 and peak.spread > 0:
        ratio = peak.spread / anchor.spread
    dx = peak.x + ratio * (mask.cx + mask.dx - anchor.x) - mask.cx
    dy = peak.y + ratio * (mask.cy + mask.dy - anchor.y) - mask.cy
    return mask.moved(dx=dx, dy=dy, scale=mask.scale * ratio)


def follow_anchor(mask: Mask, anchor: Anchor, features: np.ndarray, info: LayerInfo) -> Mask:
    """``mask`` where ``anchor`` puts it on one portrait whose unedited ``features`` (C, h, w) of the
    anchor's layer (described by ``info``) are given: the image part of the map, margin left out."""
    m = image_margin(info.margin, info.height, info.width)
    channels = sorted(set(anchor.channels))
    return anchored_mask(mask, anchor, features[channels, m:info.height - m, m:info.width - m])
