"""Where the portrait renderer draws each feature: its box on average (and how far it wanders), and
the pixels it changes (its footprint), learnt from the renderer's own labelled drawings."""

from __future__ import annotations

import functools

import cv2
import numpy as np

from ganinterface.demo import portraits
from ganinterface.engine.scene import Bitmap, Mask, Rect
from ganinterface.search.samples import FINDING_SEED_BASE


@functools.lru_cache(maxsize=16)
def region_prior(region: str, height: int, width: int, count: int = 1000) -> tuple[Rect, Rect]:
    """Where the renderer puts a feature: (mean box, mean box grown by the centre's jitter)."""
    _, labels = portraits.render_batch(range(portraits_seed_base(), portraits_seed_base() + count),
                                       height, width)
    boxes = np.array([label[region] for label in labels], dtype=np.float64)
    mean = boxes.mean(axis=0)
    centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)
    jitter_x, jitter_y = centres.std(axis=0)
    mean_box = Rect(*(float(v) for v in mean), softness=0.3)
    grown = Rect(float(mean[0] - jitter_x), float(mean[1] - jitter_y),
                 float(mean[2] + jitter_x), float(mean[3] + jitter_y))
    return mean_box, grown


# A fill copies over the feature's own footprint, not its box: copied into a band box's top corners
# (background beside the arc), hair squared off the top of the head.
REGION_FEATURES = {"band_box": "hair_band", "mouth_box": "mouth_open"}
FOOTPRINT_CHANGE = 30  # summed RGB change that counts a pixel as drawn differently
FOOTPRINT_FLOOR, FOOTPRINT_FULL = 0.35, 0.7  # shares of (aligned) renders mapped to mask 0 and 1


@functools.lru_cache(maxsize=16)
def region_footprint(region: str, height: int, width: int, count: int = 400) -> np.ndarray:
    """(height, width): the share of renders in which each pixel changes when the region's feature
    is drawn or not (the same portrait twice, ``portraits.with_and_without``), each render moved so
    that its feature's box is centred where the box is on average: the shape an anchored mask
    carries to the feature on each portrait, not smeared by where heads sit (a band's footprint
    over unaligned renders covered a quarter of the image)."""
    feature = REGION_FEATURES[region]
    pairs = [portraits.with_and_without(seed, feature)
             for seed in range(portraits_seed_base(), portraits_seed_base() + count)]
    centres = np.array([_centre(portraits.labels_of(drawn)[region]) for drawn, _ in pairs])
    mean_centre = centres.mean(axis=0)
    changed = np.zeros((height, width))
    for (drawn_attributes, plain_attributes), centre in zip(pairs, centres):
        drawn, plain = (portraits.render_attributes(a, height, width).astype(np.int32)
                        for a in (drawn_attributes, plain_attributes))
        change = (np.abs(drawn - plain).sum(axis=2) > FOOTPRINT_CHANGE).astype(np.float32)
        dx, dy = (mean_centre - centre) * (width, height)
        changed += cv2.warpAffine(change, np.float32([[1, 0, dx], [0, 1, dy]]), (width, height),
                                  flags=cv2.INTER_LINEAR, borderValue=0)
    return changed / count


def _centre(box: list[float]) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


def footprint_mask(region: str, height: int, width: int) -> Mask:
    """A soft bitmap mask of where the renderer draws the region's feature: 0 where fewer than
    FOOTPRINT_FLOOR of renders change, 1 from FOOTPRINT_FULL (stored at half size from 64 rows)."""
    values = np.clip((region_footprint(region, height, width) - FOOTPRINT_FLOOR)
                     / (FOOTPRINT_FULL - FOOTPRINT_FLOOR), 0.0, 1.0)
    if height >= 64:
        values = values.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))
    return Mask((Bitmap(values.astype(np.float32)),))


def portraits_seed_base() -> int:
    return FINDING_SEED_BASE + 900_000  # renders used only to learn where features sit
