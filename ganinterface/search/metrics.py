"""How good is an edit?  Flip rate, locality, preservation and mask area, as issue 5 defines them.

All functions take plain numpy arrays so they can be checked by hand:

* flip rate     share of seeds whose attribute ends in the target state after the edit (among the
                seeds that did not start there);
* locality      share of the total absolute pixel change that falls inside the (dilated) mask;
* preservation  share of the *other* attributes the classifier reads the same before and after;
* mask area     share of the image the dilated mask covers;
* skin patch    CIEDE2000 between the mean colour of the skin inside the mask before and after (skin:
                pixels near the colour of the face around the mask);
* seam          CIEDE2000 between the colour along the edge of what the edit changed and the hair
                just beside it, after the edit, on the worst stretches of edge (a removed band that
                leaves a line or a lighter stripe where its edge was, or at one end).
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

from ganinterface.search.colour import ciede2000, srgb_to_lab

SURROUNDING = 3  # pixels around a region whose median colour is the skin or hair beside it
NEAR = 12.0  # CIEDE2000 from that colour within which a pixel counts as the same skin or hair
CHANGED = 15.0  # CIEDE2000 of a pixel's change that counts it as repainted by the edit
STRETCH = 4  # pixels: a seam's step is averaged over the edge within this of each edge pixel
SEAM_PERCENTILE = 90  # of those stretches' steps: the seam where it shows, not its mean


def dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Binary dilation of ``mask > 0`` by a disc of radius ``pixels``."""
    binary = (np.asarray(mask) > 0).astype(np.uint8)
    if pixels <= 0:
        return binary.astype(bool)
    size = 2 * pixels + 1
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    return cv2.dilate(binary, disc).astype(bool)


def flip_rate(before: np.ndarray, after: np.ndarray, target: int) -> float:
    """Share of samples not in ``target`` before that are in ``target`` after (NaN if none qualify)."""
    before, after = np.asarray(before), np.asarray(after)
    eligible = before != target
    if not eligible.any():
        return float("nan")
    return float(np.mean(after[eligible] == target))


def locality(image_before: np.ndarray, image_after: np.ndarray, region: np.ndarray) -> float:
    """Share of the absolute pixel change inside ``region`` (H, W) bool; 1.0 if nothing changed."""
    change = np.abs(np.asarray(image_after, np.float64) - np.asarray(image_before, np.float64))
    if change.ndim == 3:
        change = change.sum(axis=-1)
    total = change.sum()
    if total == 0:
        return 1.0
    return float(change[np.asarray(region, bool)].sum() / total)


def preservation(before: Mapping[str, np.ndarray], after: Mapping[str, np.ndarray],
                 edited: str) -> float:
    """Share of (sample, attribute) pairs, over attributes other than ``edited``, left unchanged."""
    same = [np.asarray(before[name]) == np.asarray(after[name]) for name in before if name != edited]
    if not same:
        return float("nan")
    return float(np.mean(np.concatenate([s.ravel() for s in same])))


def changed_shares(before: Mapping[str, np.ndarray], after: Mapping[str, np.ndarray],
                   edited: str) -> dict[str, float]:
    """For each attribute other than ``edited``, the share of samples whose reading changed."""
    return {name: float(np.mean(np.asarray(before[name]) != np.asarray(after[name])))
            for name in before if name != edited}


def mask_area(region: np.ndarray) -> float:
    return float(np.mean(np.asarray(region, bool)))


def erode(mask: np.ndarray, pixels: int) -> np.ndarray:
    return ~dilate(~np.asarray(mask, bool), pixels)


def surrounding_colour(lab: np.ndarray, region: np.ndarray, pixels: int = SURROUNDING) -> np.ndarray:
    """Median CIELAB colour of the ring ``pixels`` wide around ``region`` (H, W) bool."""
    ring = dilate(region, pixels) & ~np.asarray(region, bool)
    return np.median(lab[ring], axis=0) if ring.any() else np.full(3, np.nan)


def mean_colour_change(lab_before: np.ndarray, lab_after: np.ndarray, pixels: np.ndarray) -> float:
    """CIEDE2000 between the mean colours of ``pixels`` before and after (NaN if there are none)."""
    if not pixels.any():
        return float("nan")
    return float(ciede2000(lab_before[pixels].mean(axis=0), lab_after[pixels].mean(axis=0)))


def skin_patch(image_before: np.ndarray, image_after: np.ndarray, region: np.ndarray) -> float:
    """How far the skin inside ``region`` changed colour on average: CIEDE2000 between the mean colour
    before and after of the pixels that were near the face's colour around the region."""
    region = np.asarray(region, bool)
    before, after = srgb_to_lab(image_before), srgb_to_lab(image_after)
    skin = region & (ciede2000(before, surrounding_colour(before, region)) < NEAR)
    return mean_colour_change(before, after, skin)


def repainted(image_before: np.ndarray, image_after: np.ndarray, region: np.ndarray) -> np.ndarray:
    """(H, W) bool: the pixels of ``region`` whose colour the edit changed visibly."""
    change = ciede2000(srgb_to_lab(image_before), srgb_to_lab(image_after))
    return np.asarray(region, bool) & (change > CHANGED)


def seam(image_before: np.ndarray, image_after: np.ndarray, region: np.ndarray) -> float:
    """The colour step, after the edit, from the hair beside what it repainted inside ``region`` to
    the edge of the repainted area, where it is worst.  Each edge pixel is taken against the median
    of the hair outside within SURROUNDING pixels of it (a mean was drawn down by the shading beside
    a strand's dark line and read clean hair as a step); the steps are averaged as CIELAB vectors
    over each stretch of edge (the edge pixels within STRETCH of one: hair texture cancels, a line
    or a stripe does not), each stretch's mean step is given as CIEDE2000 from the hair beside it,
    and the seam is the SEAM_PERCENTILE of those: a stripe along a tenth of the edge counts in full,
    where the mean over the whole edge hid a light stripe at one end of a band.  Only edge with
    nothing but hair beside it counts: where a removed band met the head's outline or the
    background, the step is the picture's own (NaN if there is no such edge)."""
    area = repainted(image_before, image_after, region)
    after = srgb_to_lab(image_after)
    outside = dilate(area, SURROUNDING) & ~area
    hair = outside & (ciede2000(after, surrounding_colour(after, area)) < NEAR)
    edge = area & ~erode(area, 1) & ~dilate(outside & ~hair, SURROUNDING)
    hair_count = _box_sum(hair.astype(np.float64), SURROUNDING)
    edge &= hair_count > 0
    if not edge.any():
        return float("nan")
    beside = np.zeros_like(after)
    for y, x in zip(*np.nonzero(edge)):
        near = np.s_[max(y - SURROUNDING, 0):y + SURROUNDING + 1,
                     max(x - SURROUNDING, 0):x + SURROUNDING + 1]
        beside[y, x] = np.median(after[near][hair[near]], axis=0)
    step = np.where(edge[..., None], after - beside, 0.0)
    stretch_count = _box_sum(edge.astype(np.float64), STRETCH)[edge][:, None]
    stretch_step = _box_sum(step, STRETCH)[edge] / stretch_count
    stretch_beside = _box_sum(beside, STRETCH)[edge] / stretch_count
    steps = ciede2000(stretch_beside + stretch_step, stretch_beside)
    return float(np.percentile(steps, SEAM_PERCENTILE))


def _box_sum(values: np.ndarray, radius: int) -> np.ndarray:
    """Each pixel's sum of ``values`` over the square ``radius`` pixels around it."""
    size = 2 * radius + 1
    return cv2.boxFilter(values, -1, (size, size), normalize=False, borderType=cv2.BORDER_CONSTANT)
