"""``feature_copy``: fill a region of a layer's features with the portrait's own features from
elsewhere (nearer a centre, or shifted), e.g. a hair band filled with the hair it lies on."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import torch

from ganinterface.engine.kinds.base import (KEEP_REST, AnchoredKind, EditContext, KeyedHook, Region,
                                            Tensor, anchored, built_for, check_layer, digest,
                                            keep_rest_field, landing, named, rest_kept)
from ganinterface.engine.masks import image_margin
from ganinterface.engine.scene import (Anchor, Mask, optional, read_anchor, read_mask, read_number,
                                       read_pair, read_str)


@dataclasses.dataclass(frozen=True)
class FeatureCopy:
    """Inside ``mask``, ``layer``'s features are copied from elsewhere on the same portrait.

    A point p of the mask takes the features at ``centre + scale * (p - centre) + offset``
    (normalised coordinates, placed with the mask: an anchored copy follows the feature).  With
    ``scale`` below 1 about a centre under a hair band, the band is filled with the hair it lies on,
    whatever that hair's colour, which no fixed addition can do.  ``amount`` blends: 0 leaves the
    features as they are, 1 replaces them.
    """

    layer: str
    mask: Mask
    scale: float = 1.0
    centre: tuple[float, float] = (0.5, 0.5)
    offset: tuple[float, float] = (0.0, 0.0)
    amount: float = 1.0
    enabled: bool = True
    anchor: Anchor | None = None
    name: str = ""
    keep_rest: bool = keep_rest_field()
    kind: ClassVar[str] = "feature_copy"


class FeatureCopyKind(AnchoredKind):
    name = "feature_copy"
    edit_type = FeatureCopy
    readers = {"layer": read_str, "mask": read_mask, "scale": read_number, "centre": read_pair,
               "offset": read_pair, "amount": read_number, "anchor": optional(read_anchor),
               **KEEP_REST}
    has_strength = True
    strength_tip = "How much of the copied features replaces the region (1 = all of it)"
    has_fill_scale = True

    def describe(self, edit: FeatureCopy) -> str:
        return (f"{named(edit)}Fill {edit.layer} from ×{edit.scale:g}  {edit.amount:.2f}"
                f"{anchored(edit.anchor)}{rest_kept(edit)}")

    def layer_hook(self, edit: FeatureCopy, ctx: EditContext, what: str) -> tuple[int, KeyedHook] | None:
        """Inside the placed mask the activation (N, C, h, w) moves ``amount`` of the way to its own
        values at the copy's sources (bilinear, clamped at the border); outside it is kept.  The
        sources are sampled in float32 (a grid in a coarser type would misplace them by a fraction
        of a pixel)."""
        k, info = check_layer(ctx.generator, edit.layer, what)
        placement = landing(ctx, k, edit.mask, edit.anchor, what, edit.amount)
        if placement is None:
            return None
        region = Region.of(placement.rasters)
        sources = np.stack([copy_sources(edit, placed, info.height, info.width,
                                         info.margin)[region.rows, region.cols]
                            for placed in placement.masks])  # (N, box h, box w, 2)
        grid = torch.from_numpy(sources)

        @built_for
        def parts(dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
            weight = float(edit.amount) * torch.from_numpy(region.crop(placement.rasters))[:, None]
            return grid.to(device), weight.to(device=device, dtype=dtype)

        def change(x: Tensor) -> None:
            grid_on_device, weight = parts(x)
            source = torch.nn.functional.grid_sample(x.float(), grid_on_device, mode="bilinear",
                                                     padding_mode="border", align_corners=False)
            box = region.crop(x)
            box += weight * (source.to(x.dtype) - box)

        return k, KeyedHook(change, lambda: digest("copy", sources, placement.rasters,
                                                   float(edit.amount)))


def copy_sources(edit: FeatureCopy, placed: Mask, height: int, width: int,
                 margin: float = 0.0) -> np.ndarray:
    """(height, width, 2) ``grid_sample`` coordinates of where each pixel of a layer's map copies
    from, for ``edit`` with its mask placed as ``placed``.

    The centre and offset are placed with the mask (centre mapped like a point, offset scaled);
    pixel centres and sources are in the image part of the map, inside ``margin``."""
    m = image_margin(margin, height, width)
    inner_h, inner_w = height - 2 * m, width - 2 * m
    centre_x = placed.cx + placed.scale * (edit.centre[0] - placed.cx) + placed.dx
    centre_y = placed.cy + placed.scale * (edit.centre[1] - placed.cy) + placed.dy
    xs = (np.arange(width) - m + 0.5) / inner_w
    ys = (np.arange(height) - m + 0.5) / inner_h
    source_x = centre_x + edit.scale * (xs - centre_x) + placed.scale * edit.offset[0]
    source_y = centre_y + edit.scale * (ys - centre_y) + placed.scale * edit.offset[1]
    # normalised image position -> index in the whole map -> grid_sample's [-1, 1] (align_corners
    # False: -1 and 1 are the outer edges of the first and last pixel)
    grid_x = (source_x * inner_w + m) / width * 2 - 1
    grid_y = (source_y * inner_h + m) / height * 2 - 1
    grid = np.empty((height, width, 2), dtype=np.float32)
    grid[..., 0] = grid_x[None, :]
    grid[..., 1] = grid_y[:, None]
    return grid


KIND = FeatureCopyKind()
