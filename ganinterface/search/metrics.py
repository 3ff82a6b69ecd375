"""How good is an edit?  Flip rate, locality, preservation and mask area, as issue 5 defines them.

All functions take plain numpy arrays so they can be checked by hand:

* flip rate     share of seeds whose attribute ends in the target state after the edit (among the
                seeds that did not start there);
* locality      share of the total absolute pixel change that falls inside the (dilated) mask;
* preservation  share of the *other* attributes the classifier reads the same before and after;
* mask area     share of the image the dilated mask covers.
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np


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


def mask_area(region: np.ndarray) -> float:
    return float(np.mean(np.asarray(region, bool)))
