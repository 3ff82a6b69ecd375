"""Where the Fill tool copies from: a region beside the rectangle that looks like what surrounds the
rectangle, with surroundings like the rectangle's own (exemplar filling, as in inpainting by patch
search).

Copying a layer's features from a ring around the rectangle (scaled about its centre) keeps the
middle of what is covered: an eye stayed an eye.  Instead the whole rectangle takes the features of
a shifted copy of itself, from the side whose surroundings match the rectangle's surroundings best
in the picture shown, and whose own content is closest to the colour around the rectangle (so an eye
is not filled with the other eye), at the chosen layer and every later one, so later layers cannot
draw the old content back.  Plain numpy on the shown image; no Qt, no torch.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# Shifts tried, in rectangle sizes: beside it on each side, and a little further away.
SHIFTS = (1.1, 1.6)
DIRECTIONS = {"below it": (0, 1), "above it": (0, -1), "to its right": (1, 0), "to its left": (-1, 0)}


class FillError(ValueError):
    """No region of the picture can fill the rectangle; the message says what to do instead."""


@dataclasses.dataclass(frozen=True)
class FillSource:
    offset: tuple[float, float]  # normalised shift from the rectangle to where it copies from
    side: str  # "below it", "above it", "to its right", "to its left"
    mismatch: float  # surroundings' difference + content's distance from the colour around, 0-255


def find_fill_source(image: np.ndarray, box: tuple[float, float, float, float]) -> FillSource:
    """The shift of ``box`` (normalised x0, y0, x1, y1) in ``image`` (H, W, 3) whose surroundings
    are most like the box's own and whose content is most like the colour around the box;
    FillError when no shifted copy lies inside the picture."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = _pixels(box, width, height)
    ring = max(2, min(x1 - x0, y1 - y0) // 2)
    here = _surroundings(image, x0, y0, x1, y1, ring)
    around = None if here is None else np.median(here, axis=0)  # robust to a feature in the ring
    best: FillSource | None = None
    for side, (sx, sy) in DIRECTIONS.items():
        for shift in SHIFTS:
            dx, dy = round(sx * shift * (x1 - x0)), round(sy * shift * (y1 - y0))
            there = _surroundings(image, x0 + dx, y0 + dy, x1 + dx, y1 + dy, ring)
            if here is None or there is None:
                continue
            content = image[y0 + dy:y1 + dy, x0 + dx:x1 + dx].astype(np.float32)
            mismatch = float(np.abs(here - there).mean() + np.abs(content - around).mean())
            if best is None or mismatch < best.mismatch:
                best = FillSource((dx / width, dy / height), side, mismatch)
    if best is None:
        raise FillError("there is no room beside the rectangle to copy from: draw it smaller, or "
                        "away from the edge of the picture")
    return best


def _pixels(box: tuple[float, float, float, float], width: int, height: int) -> tuple[int, ...]:
    x0, y0 = int(np.floor(box[0] * width)), int(np.floor(box[1] * height))
    x1, y1 = int(np.ceil(box[2] * width)), int(np.ceil(box[3] * height))
    return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)


def _surroundings(image: np.ndarray, x0: int, y0: int, x1: int, y1: int,
                  ring: int) -> np.ndarray | None:
    """The pixels within ``ring`` of the box but outside it (None if that leaves the picture)."""
    height, width = image.shape[:2]
    if x0 - ring < 0 or y0 - ring < 0 or x1 + ring > width or y1 + ring > height:
        return None
    patch = image[y0 - ring:y1 + ring, x0 - ring:x1 + ring].astype(np.float32)
    outside = np.ones(patch.shape[:2], dtype=bool)
    outside[ring:-ring, ring:-ring] = False
    return patch[outside]
