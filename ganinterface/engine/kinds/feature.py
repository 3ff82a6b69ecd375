"""``feature``: paint onto channels of a layer's features: add ``amount`` times a soft mask.

The channel list is typed and shown as "1-3, 7" (``format_channels``, ``parse_channels``).

An edit may carry the ``level`` its amount was set for (the channels' mean |activation| on the
generator's samples); it then paints each portrait in proportion to that portrait's own level. A
projected picture's features are often 1.3-5 times louder than a sample's in the channels a recipe
paints, and a fixed amount is then too weak to change it (docs/projection-report.md).
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np
import torch

from ganinterface.engine.kinds.base import (KEEP_REST, AnchoredKind, EditContext, KeyedHook, Region,
                                            Tensor, anchored, built_for, channel_runs,
                                            check_channels, check_layer, digest, keep_rest_field,
                                            landing, named, rest_kept)
from ganinterface.engine.latents import LatentError, parse_seeds
from ganinterface.engine.scene import (Anchor, Mask, SceneFormatError, optional, read_anchor,
                                       read_channels, read_mask, read_number, read_positive,
                                       read_str)


LEVEL_GAIN_MOST = 8.0  # however loud a portrait (or small a file's level), at most 8x the amount


@dataclasses.dataclass(frozen=True)
class FeatureEdit:
    """Add ``amount * mask`` to ``channels`` of the output of ``layer`` (negative: subtract).

    With ``level``, the amount is multiplied on each portrait by the channels' mean |activation| over
    their whole maps there, divided by ``level``; the factor is kept between ``level_floor`` and
    ``LEVEL_GAIN_MOST``.
    """

    layer: str
    channels: tuple[int, ...]
    mask: Mask
    amount: float
    enabled: bool = True
    anchor: Anchor | None = None
    name: str = ""
    level: float | None = dataclasses.field(default=None, metadata={"omit_when_default": True})
    level_floor: float = dataclasses.field(default=0.0, metadata={"omit_when_default": True})
    keep_rest: bool = keep_rest_field()
    kind: ClassVar[str] = "feature"

    def __post_init__(self) -> None:
        if self.level is not None and not (math.isfinite(self.level) and self.level > 0):
            raise ValueError(f"level must be a positive number, got {self.level}")
        if not 0.0 <= self.level_floor <= LEVEL_GAIN_MOST:
            raise ValueError(f"level_floor must be between 0 and {LEVEL_GAIN_MOST:g}, got {self.level_floor}")


def read_level_floor(value: object, what: str) -> float:
    floor = read_number(value, what)
    if not 0 <= floor <= LEVEL_GAIN_MOST:
        raise SceneFormatError(f"{what} must be between 0 and {LEVEL_GAIN_MOST:g}, got {floor}")
    return floor


class FeatureKind(AnchoredKind):
    name = "feature"
    edit_type = FeatureEdit
    readers = {"layer": read_str, "channels": read_channels, "mask": read_mask, "amount": read_number,
               "anchor": optional(read_anchor), "level": optional(read_positive),
               "level_floor": read_level_floor, **KEEP_REST}
    has_strength = True
    has_channels = True

    def describe(self, edit: FeatureEdit) -> str:
        return (f"{named(edit)}Paint {edit.layer}  channels {format_channels(edit.channels) or 'all'}  "
                f"{edit.amount:+.2f}{'  × level' if edit.level else ''}{anchored(edit.anchor)}"
                f"{rest_kept(edit)}")

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
            added = values(x) if edit.level is None else values(x) * level_gains(x, runs, edit)
            box = region.crop(x)
            for run in runs:
                box[:, run] += added

        levelled = () if edit.level is None else (edit.level, edit.level_floor)
        return k, KeyedHook(change, lambda: digest("feature", channels, float(edit.amount),
                                                   placement.rasters, *levelled))


def channel_level(x: Tensor, runs: list[slice]) -> Tensor:
    """(N,) float32: each sample's mean |activation| over the channels in ``runs``, whole maps."""
    total = sum(x[:, run].abs().float().sum(dim=(1, 2, 3)) for run in runs)
    count = sum(x[:, run][0].numel() for run in runs)
    return total / count


def level_gains(x: Tensor, runs: list[slice], edit: FeatureEdit) -> Tensor:
    """(N, 1, 1, 1) in x's dtype: what each sample's amount is multiplied by (``FeatureEdit.level``)."""
    gains = (channel_level(x, runs) / edit.level).clamp(edit.level_floor, LEVEL_GAIN_MOST)
    return gains.to(x.dtype)[:, None, None, None]


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
