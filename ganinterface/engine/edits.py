"""Turning a Scene's edits into what the generator understands: changed ws rows and layer hooks.

Direction edits and style mixes change ``ws`` (the rows a layer reads); feature edits and region
resamples become hooks on a layer's output activation.  Each hook comes with a key: a digest of
exactly what it does (channels, amount, the rasterised mask, the other latent's activation), so the
renderer's layer cache can tell when a hook has really changed.  Problems with an edit raise
``EditError`` with a message naming the edit.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence

import numpy as np
import torch

from ganinterface.engine.analysis import locate_peak
from ganinterface.engine.masks import image_margin
from ganinterface.engine.scene import Anchor, DirectionEdit, Edit, FeatureCopy, Mask, StyleMix
from ganinterface.models.base import GeneratorBase, LayerHook

Tensor = torch.Tensor


class EditError(ValueError):
    """An edit cannot be applied to this model; the message names the edit and the problem."""


def describe(index: int, edit: Edit) -> str:
    name = f" {edit.name!r}" if getattr(edit, "name", "") else ""
    return f"edit {index + 1} ({edit.kind}{name})"


def row_range(first: int, last: int | None, num_ws: int, what: str) -> slice:
    """ws rows ``first .. last`` (inclusive; None = to the end) as a slice, checked against num_ws."""
    last = num_ws - 1 if last is None else last
    if not 0 <= first <= last < num_ws:
        raise EditError(f"{what}: w rows {first}..{last} are outside this model's 0..{num_ws - 1}")
    return slice(first, last + 1)


def apply_direction(ws: Tensor, edit: DirectionEdit, what: str) -> Tensor:
    """ws (num_ws, w_dim) with rows first..last moved by amount * direction."""
    num_ws, w_dim = ws.shape
    rows = row_range(edit.first, edit.last, num_ws, what)
    direction = edit.direction
    if direction.shape == (w_dim,):
        step = torch.from_numpy(np.array(direction)).to(ws.device)[None, :]
    elif direction.shape == (num_ws, w_dim):
        step = torch.from_numpy(np.array(direction[rows])).to(ws.device)
    else:
        raise EditError(f"{what}: direction has shape {direction.shape}, this model needs ({w_dim},) "
                        f"or ({num_ws}, {w_dim})")
    ws = ws.clone()
    ws[rows] += float(edit.amount) * step
    return ws


def apply_style_mix(ws: Tensor, other_ws: Tensor, edit: StyleMix, what: str) -> Tensor:
    rows = row_range(edit.first, edit.last, ws.shape[0], what)
    ws = ws.clone()
    ws[rows] = other_ws[rows]
    return ws


@dataclasses.dataclass(frozen=True)
class KeyedHook:
    """A layer hook and a digest of everything it does (equal keys: identical effect)."""

    key: str
    apply: LayerHook


def digest(*parts: object) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.tobytes() if isinstance(part, np.ndarray) else repr(part).encode())
        h.update(b"\x00")
    return h.hexdigest()


def check_layer(generator: GeneratorBase, layer: str, what: str) -> int:
    try:
        return generator.layer_index(layer)
    except KeyError as error:
        raise EditError(f"{what}: {error.args[0]}") from None


def check_channels(channels: Sequence[int], count: int, layer: str, what: str) -> tuple[int, ...]:
    unique = tuple(sorted(set(int(c) for c in channels)))
    if not unique:
        raise EditError(f"{what}: no channels chosen")
    if unique[0] < 0 or unique[-1] >= count:
        raise EditError(f"{what}: channel {unique[-1] if unique[-1] >= count else unique[0]} does not "
                        f"exist; {layer} has channels 0..{count - 1}")
    return unique


def anchored_mask(mask: Mask, anchor: Anchor, activation: np.ndarray) -> Mask:
    """``mask`` moved by (peak - anchor) on ``activation`` (C_anchor, h, w), scaled with the spread.

    Composes with the mask's own placement: the anchor's map q -> peak + r (q - anchor) is applied
    after the mask's p -> c + s (p - c) + d, keeping the centre c.
    """
    near = None if anchor.reach is None else (anchor.x, anchor.y, anchor.reach)
    peak = locate_peak(activation.mean(axis=0), near)
    ratio = 1.0
    if anchor.follow_scale and anchor.spread > 0 and peak.spread > 0:
        ratio = peak.spread / anchor.spread
    dx = peak.x + ratio * (mask.cx + mask.dx - anchor.x) - mask.cx
    dy = peak.y + ratio * (mask.cy + mask.dy - anchor.y) - mask.cy
    return mask.moved(dx=dx, dy=dy, scale=mask.scale * ratio)


def feature_hook(channels: tuple[int, ...], count: int, amount: float, mask: np.ndarray,
                 device: torch.device) -> KeyedHook:
    """Adds ``amount * mask`` to ``channels`` of the activation (N, count, h, w), nothing elsewhere."""
    weights = torch.zeros(count, dtype=torch.float32)
    weights[list(channels)] = float(amount)
    delta = (weights[:, None, None] * torch.from_numpy(mask)[None]).unsqueeze(0).to(device)
    return KeyedHook(key=digest("feature", channels, float(amount), mask),
                     apply=lambda x: x + delta.to(x.dtype))


def resample_hook(other: Tensor, mask: np.ndarray, other_key: str, device: torch.device) -> KeyedHook:
    """Inside ``mask`` the activation becomes ``other`` (another latent's), outside it is kept."""
    weight = torch.from_numpy(mask)[None, None].to(device)
    return KeyedHook(key=digest("resample", other_key, mask),
                     apply=lambda x: x + weight.to(x.dtype) * (other.to(x.dtype) - x))


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


def copy_hook(sources: np.ndarray, mask: np.ndarray, amount: float, device: torch.device) -> KeyedHook:
    """Inside ``mask`` the activation (N, C, h, w) moves ``amount`` of the way to its own values at
    ``sources`` (bilinear, clamped at the border); outside it is kept."""
    grid = torch.from_numpy(sources)[None].to(device)
    weight = (float(amount) * torch.from_numpy(mask))[None, None].to(device)
    return KeyedHook(key=digest("copy", sources, mask, float(amount)),
                     apply=lambda x: copy_features(x, grid, weight))


def copy_features(x: Tensor, grid: Tensor, weight: Tensor) -> Tensor:
    """``x + weight * (x sampled at grid - x)``; ``grid`` and ``weight`` broadcast over the batch
    (or have one entry per sample)."""
    grid = grid.expand(x.shape[0], -1, -1, -1) if grid.shape[0] == 1 else grid
    source = torch.nn.functional.grid_sample(x.float(), grid.float(), mode="bilinear",
                                             padding_mode="border", align_corners=False)
    return x + weight.to(x.dtype) * (source.to(x.dtype) - x)


def compose(hooks: Sequence[KeyedHook]) -> KeyedHook:
    """Several edits on one layer, applied in the scene's order."""
    if len(hooks) == 1:
        return hooks[0]
    functions = [h.apply for h in hooks]

    def apply(x: Tensor) -> Tensor:
        for function in functions:
            x = function(x)
        return x

    return KeyedHook(key=digest(*(h.key for h in hooks)), apply=apply)
