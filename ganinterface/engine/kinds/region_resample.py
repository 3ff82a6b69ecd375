"""``region_resample``: inside a mask, a layer's features come from another seed's portrait (a new
fill for the region, the rest untouched)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch

from ganinterface.engine.kinds.base import (EditContext, KeyedHook, LayerKind, Region, Tensor,
                                            built_for, check_layer, digest, landing, named)
from ganinterface.engine.scene import Mask, read_int, read_mask, read_str


@dataclasses.dataclass(frozen=True)
class RegionResample:
    """Inside ``mask``, replace ``layer``'s features with those of another seed (the rest untouched)."""

    layer: str
    mask: Mask
    seed: int
    enabled: bool = True
    name: str = ""
    kind: ClassVar[str] = "region_resample"


class RegionResampleKind(LayerKind):
    name = "region_resample"
    edit_type = RegionResample
    readers = {"layer": read_str, "mask": read_mask, "seed": read_int}
    redraws_seed = True

    def describe(self, edit: RegionResample) -> str:
        return f"{named(edit)}Resample {edit.layer} from seed {edit.seed}"

    def layer_hook(self, edit: RegionResample, ctx: EditContext,
                   what: str) -> tuple[int, KeyedHook] | None:
        """Inside the mask the activation becomes the other seed's, outside it is kept."""
        k, _ = check_layer(ctx.generator, edit.layer, what)
        placement = landing(ctx, k, edit.mask, None, what)
        if placement is None:
            return None
        other, other_key = ctx.other_features(edit.seed, k)
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
