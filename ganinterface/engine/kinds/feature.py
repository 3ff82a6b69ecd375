"""``feature``: paint onto channels of a layer's features: add ``amount`` times a soft mask.

The channel list is typed and shown as "1-3, 7" (``format_channels``, ``parse_channels``).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import torch

from ganinterface.engine.kinds.base import (AnchoredKind, EditContext, KeyedHook, Region, Tensor,
                                            anchored, built_for, channel_runs, check_channels,
                                            check_layer, digest, landing, named)
from ganinterface.engine.latents import LatentError, parse_seeds
from ganinterface.engine.scene import (Anchor, Mask, optional, read_anchor, read_channels, read_mask,
                                       read_number, read_str)


@dataclasses.dataclass(frozen=True)
class FeatureEdit:
    """Add ``amount * mask`` to ``channels`` of the output of ``layer`` (negative: subtract)."""

    layer: str
    channels: tuple[int, ...]
    mask: Mask
    amount: float
    enabled: bool = True
    anchor: Anchor | None = None
    name: str = ""
    kind: ClassVar[str] = "feature"


class FeatureKind(AnchoredKind):
    name = "feature"
    edit_type = FeatureEdit
    readers = {"layer": read_str, "channels": read_channels, "mask": read_mask, "amount": read_number,
               "anchor": optional(read_anchor)}
    has_strength = True
    has_channels = True

    def describe(self, edit: FeatureEdit) -> str:
        return (f"{named(edit)}Paint {edit.layer}  channels {format_channels(edit.channels) or 'all'}  "
                f"{edit.amount:+.2f}{anchored(edit.anchor)}")

    def layer_hook(self, edit: FeatureEdit, ctx: EditContext, what: str) -> tuple[int, KeyedHook] | None:
        k, info = check_layer(ctx.generator, edit.layer, what)
        channels = check_channels(edit.channels, info.channels, info.name, what)
        placement = landing(ctx, k, edit.mask, edit.anchor, what, edit.amount)
        if placement is None:
            return None
        amount = np.float32(edit.amount)
        region = Region.of(placement.rasters)
        runs = channel_runs(channels)

        @built_for
        def values(dtype: torch.dtype, device: torch.device) -> Tensor:  # (N, 1, box h, box w)
            added = torch.from_numpy(amount * region.crop(placement.rasters))[:, None]
            return added.to(device=device, dtype=dtype)

        def change(x: Tensor) -> None:
            box = region.crop(x)
            for run in runs:
                box[:, run] += values(x)

        return k, KeyedHook(change, lambda: digest("feature", channels, float(edit.amount),
                                                   placement.rasters))


def format_channels(channels: tuple[int, ...]) -> str:
    """(1, 2, 3, 7) -> "1-3, 7"."""
    parts: list[str] = []
    ordered = sorted(set(channels))
    start = previous = None
    for channel in ordered + [None]:
        if start is not None and channel == previous + 1:
            previous = channel
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = channel
    return ", ".join(parts)


def parse_channels(text: str, count: int) -> tuple[int, ...]:
    """"1-3, 7" -> (1, 2, 3, 7); ValueError with a readable message if malformed or out of range."""
    if not text.strip():
        return ()
    try:
        channels = tuple(dict.fromkeys(parse_seeds(text.replace(" ", ""))))
    except LatentError as error:
        raise ValueError(f"channels: {error}") from None
    bad = [c for c in channels if not 0 <= c < count]
    if bad:
        raise ValueError(f"channel {bad[0]} is out of range (this layer has {count} channels)")
    return channels


KIND = FeatureKind()
