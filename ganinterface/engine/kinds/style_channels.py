"""``style_channels``: offset a few modulation styles (the affine outputs that scale a layer's input
channels) by ``amount * offset``: a style-space direction, often a handful of channels that open a
mouth or add a hair band and leave the rest of the portrait alone.

A two-sided edit has other offsets for amounts below zero (``negative_offsets``, in the same
orientation: amount -1 subtracts them): removing a hair band is painting hair of the portrait's own
colour where the band was, not adding a band backwards, and the channels that do it differ."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np

from ganinterface.engine.kinds.base import EditContext, EditError, EditKind, named
from ganinterface.engine.scene import SceneFormatError, read_int, read_number, read_str

StyleOffset = tuple[str, int, float]  # layer, channel (index into its styles), offset at amount 1


@dataclasses.dataclass(frozen=True)
class StyleChannelEdit:
    """Add ``amount * offset`` to the styles of the listed (layer, channel)s; below zero, of
    ``negative_offsets`` when it has them."""

    offsets: tuple[StyleOffset, ...]
    amount: float
    enabled: bool = True
    name: str = ""
    source: str = ""
    negative_offsets: tuple[StyleOffset, ...] = dataclasses.field(
        default=(), metadata={"omit_when_default": True})  # files without it stay as they were
    kind: ClassVar[str] = "style_channels"

    def active_offsets(self) -> tuple[StyleOffset, ...]:
        """The offsets its amount applies: ``negative_offsets`` below zero when it has them."""
        return self.negative_offsets if self.amount < 0 and self.negative_offsets else self.offsets

    def layers(self, offsets: tuple[StyleOffset, ...] | None = None) -> list[str]:
        """The layers ``offsets`` (default: its own) offset, in the order they are first listed."""
        return list(dict.fromkeys(layer for layer, _, _ in (self.offsets if offsets is None else offsets)))


def read_offsets(value: Any, what: str) -> tuple[StyleOffset, ...]:
    """``[[layer, channel, offset], ...]`` as a scene or recipe file writes it."""
    if not isinstance(value, list) or not value:
        raise SceneFormatError(f"{what} should be a non-empty list of [layer, channel, offset]")
    offsets = []
    for i, item in enumerate(value):
        where = f"{what}[{i}]"
        if not isinstance(item, (list, tuple)) or len(item) != 3:
            raise SceneFormatError(f"{where} should be [layer, channel, offset]")
        channel = read_int(item[1], f"{where} channel")
        if channel < 0:
            raise SceneFormatError(f"{where} has a negative channel index")
        offsets.append((read_str(item[0], f"{where} layer"), channel,
                        read_number(item[2], f"{where} offset")))
    return tuple(offsets)


class StyleChannelKind(EditKind):
    name = "style_channels"
    edit_type = StyleChannelEdit
    readers = {"offsets": read_offsets, "amount": read_number, "source": read_str,
               "negative_offsets": read_offsets}
    has_strength = True

    def describe(self, edit: StyleChannelEdit) -> str:
        text = f"{named(edit)}Style channels {edit.amount:+.2f}  {_channels_text(edit, edit.offsets)}"
        if edit.negative_offsets:
            text += f"; below zero {_channels_text(edit, edit.negative_offsets)}"
        return text

    def style_offsets(self, edit: StyleChannelEdit, ctx: EditContext, what: str) -> dict[str, np.ndarray]:
        sizes = ctx.generator.style_sizes()
        if not sizes:
            raise EditError(f"{what}: this model ({ctx.generator.architecture}) has no modulation "
                            "styles to offset")
        for layer, channel, _ in edit.offsets + edit.negative_offsets:
            if layer not in sizes:
                raise EditError(f"{what}: layer {layer!r} has no modulation styles; these do: "
                                f"{', '.join(sizes)}")
            if channel >= sizes[layer]:
                raise EditError(f"{what}: style channel {channel} does not exist; {layer} has "
                                f"styles 0..{sizes[layer] - 1}")
        offsets: dict[str, np.ndarray] = {}
        for layer, channel, offset in edit.active_offsets() if edit.amount else ():
            offsets.setdefault(layer, np.zeros(sizes[layer], np.float32))[channel] += edit.amount * offset
        return offsets


def _channels_text(edit: StyleChannelEdit, offsets: tuple[StyleOffset, ...]) -> str:
    count, layers = len(offsets), edit.layers(offsets)
    where = ", ".join(layers) if len(layers) <= 3 else f"{len(layers)} layers"
    return f"{count} channel{'s' * (count != 1)} in {where}"


KIND = StyleChannelKind()
