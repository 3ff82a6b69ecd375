"""``region_resample``: inside a mask, a layer's features come from another portrait, a seed's or a
latent file's (a new fill for the region, or a projected picture's look there; the rest untouched)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import torch

from ganinterface.engine.kinds.base import (KEEP_REST, EditContext, KeyedHook, LayerKind, Region,
                                            TakesLatent, Tensor, built_for, check_layer, digest,
                                            keep_rest_field, landing, named, rest_kept, source_text,
                                            source_ws)
from ganinterface.engine.scene import Mask, decode_array, optional, read_int, read_mask, read_str


@dataclasses.dataclass(frozen=True, eq=False)
class RegionResample(TakesLatent):
    """Inside ``mask``, replace ``layer``'s features with those of another latent: ``w`` (W or W+;
    ``source`` names its file) when given, else ``seed``'s (the rest untouched)."""

    layer: str
    mask: Mask
    seed: int
    enabled: bool = True
    name: str = ""
    w: np.ndarray | None = None
    source: str = ""
    keep_rest: bool = keep_rest_field()
    kind: ClassVar[str] = "region_resample"


class RegionResampleKind(LayerKind):
    name = "region_resample"
    edit_type = RegionResample
    readers = {"layer": read_str, "mask": read_mask, "seed": read_int, "w": optional(decode_array),
               "source": read_str, **KEEP_REST}
    redraws_seed = True

    def describe(self, edit: RegionResample) -> str:
        return f"{named(edit)}Resample {edit.layer} from {source_text(edit)}{rest_kept(edit)}"

    def layer_hook(self, edit: RegionResample, ctx: EditContext,
                   what: str) -> tuple[int, KeyedHook] | None:
        """Inside the mask the activation becomes the other latent's, outside it is kept."""
        k, _ = check_layer(ctx.generator, edit.layer, what)
        placement = landing(ctx, k, edit.mask, None, what)
        if placement is None:
            return None
        other, other_key = ctx.features_of(source_ws(edit, ctx, what), k)
        region = Region.of(placement.rasters)

        @built_for
        def parts(dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
            weight = torch.from_numpy(region.crop(placement.rasters))[:, None]
            return (weight.to(device=device, dtype=dtype),
                    region.crop(other).to(device=device, dtype=dtype))

        def change(x: Tensor) -> None:
            weight, others = parts(x)
            box = region.crop(x)
            box += weight * (others - box)

        return k, KeyedHook(change, lambda: digest("resample", other_key, placement.rasters))


KIND = RegionResampleKind()
