"""Edits that keep the rest of the picture (``keep_rest``): the render without them, taken outside
their placed masks, grown and feathered a little.

The renderer and the recipe search's batched renders both blend through here: ``rest_weights`` of
each portrait's placed masks (``kinds.rest_masks``), then ``kept_rest`` of the two renders.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ganinterface.engine.masks import rasterize
from ganinterface.engine.scene import Mask

# The edited render is taken inside the masks grown by this much and feathered over this much (a
# Gaussian's sigma), in image heights: 3 and 1 pixels on the built-in model (128 px high).  An edit
# draws a little beyond its mask (a band's edge, a closed mouth's lips): grown by 1 pixel, "close
# mouth" closed 54% of 78 projected pictures' mouths (73% without keeping the rest), by 3 pixels
# 73%, and "add hair band" added 92 -> 97% of their bands, with the change still all within the 3
# pixels around the mask that the edit report counts as its region.
REST_GROW = 3 / 128
REST_FEATHER = 1 / 128


def rest_weights(masks: Sequence[Mask], height: int, width: int) -> np.ndarray:
    """(height, width) float32 in [0, 1]: how much of the edited render each pixel takes, for the
    placed ``masks`` of the edits that keep the rest.  Their union, grown by REST_GROW and feathered
    by REST_FEATHER: 1 inside, exactly 0 three feather widths beyond the grown union (the picture
    there is the render without those edits, to the byte)."""
    import cv2  # here, not at the top: OpenCV's import is ~5% of the window's start-up

    union = np.max([rasterize(mask, height, width) for mask in dict.fromkeys(masks)], axis=0)
    grow = round(REST_GROW * height)
    if grow > 0:
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
        union = np.maximum(union, cv2.dilate((union > 0.5).astype(np.float32), disc))
    sigma = REST_FEATHER * height
    if sigma <= 0:
        return union
    # a kernel cut at 3 sigma, so that the weights are exactly 0 beyond it
    kernel = cv2.getGaussianKernel(2 * math.ceil(3 * sigma) + 1, sigma, cv2.CV_32F)
    return np.clip(cv2.sepFilter2D(union, -1, kernel, kernel), 0.0, 1.0)


def kept_rest(rest: torch.Tensor, edited: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The picture of edits that keep the rest: the ``edited`` render where ``weights`` is 1, the
    ``rest`` (rendered without those edits) where it is 0; (3, H, W) float32, weights (1, H, W)."""
    return torch.where(weights > 0, torch.lerp(rest, edited, weights), rest)
