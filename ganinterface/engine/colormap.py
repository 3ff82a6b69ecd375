"""Colouring feature maps: diverging palettes, robust scales, and the mosaic of a layer's channels.

Values are divided by a scale and clipped to [-1, 1]: -1 is the palette's negative colour (red),
0 white, +1 the positive colour (green).  Everything is numpy; the window builds its
``pyqtgraph.ColorMap`` from ``palette_stops`` / ``diverging_lut`` and draws ``feature_mosaic``'s
float array with fixed levels (-1, 1), while the command line uses ``feature_grid_image``.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

# name -> (negative, zero, positive) colours
PALETTES: dict[str, tuple[tuple[int, int, int], ...]] = {
    "red-white-green": ((202, 0, 32), (255, 255, 255), (0, 136, 55)),
    # orange / blue stay distinguishable under the common colour-vision deficiencies
    "colour-blind": ((230, 97, 1), (255, 255, 255), (5, 113, 176)),
}
DEFAULT_PALETTE = "red-white-green"
GAP_COLOUR = (64, 64, 64)
SCALE_MODES = ("shared", "channel")
ROBUST_PERCENTILE = 99.0
LUT_SIZE = 255  # odd, so that zero falls exactly on the white entry


class ColormapError(ValueError):
    """Unknown palette or scale mode; the message lists the valid ones."""


def palette_stops(palette: str = DEFAULT_PALETTE) -> tuple[np.ndarray, np.ndarray]:
    """Stop positions (3,) in [0, 1] and colours (3, 3) uint8, e.g. for ``pg.ColorMap(pos, color)``."""
    if palette not in PALETTES:
        raise ColormapError(f"unknown palette {palette!r}; palettes: {', '.join(PALETTES)}")
    return np.array([0.0, 0.5, 1.0]), np.array(PALETTES[palette], dtype=np.uint8)


def diverging_lut(palette: str = DEFAULT_PALETTE, n: int = LUT_SIZE) -> np.ndarray:
    """(n, 3) uint8 lookup table running linearly through the palette's three stops."""
    positions, colours = palette_stops(palette)
    t = np.linspace(0.0, 1.0, n)
    channels = [np.interp(t, positions, colours[:, k].astype(np.float64)) for k in range(3)]
    return np.round(np.stack(channels, axis=1)).astype(np.uint8)


def robust_scale(values: np.ndarray, axis: tuple[int, ...] | None = None) -> np.ndarray:
    """99th percentile of |values| (over ``axis``), so a few hot pixels do not wash out the rest."""
    magnitude = np.abs(np.nan_to_num(np.asarray(values, dtype=np.float32)))
    scale = np.percentile(magnitude, ROBUST_PERCENTILE, axis=axis)
    fallback = magnitude.max(axis=axis) if magnitude.size else 0.0
    scale = np.where(scale > 0, scale, fallback)  # mostly zeros: use the max instead
    return np.where(scale > 0, scale, 1.0).astype(np.float32)


def colorize(values: np.ndarray, scale: float | np.ndarray = 1.0,
             palette: str = DEFAULT_PALETTE) -> np.ndarray:
    """float array (...) -> uint8 RGB (..., 3); ``values / scale`` clipped to [-1, 1]; NaN -> gap colour."""
    lut = diverging_lut(palette)
    values = np.asarray(values, dtype=np.float32)
    normalised = np.clip(values / np.asarray(scale, dtype=np.float32), -1.0, 1.0)
    nan = np.isnan(normalised)
    index = np.round((np.where(nan, 0.0, normalised) + 1.0) * 0.5 * (len(lut) - 1)).astype(np.intp)
    rgb = lut[index]
    rgb[nan] = GAP_COLOUR
    return rgb


@dataclasses.dataclass(frozen=True)
class MosaicLayout:
    """Where each channel's tile sits in a mosaic: tile k at grid cell (k // columns, k % columns)."""

    channels: int
    rows: int
    columns: int
    tile_height: int
    tile_width: int
    gap: int
    scales: tuple[float, ...]  # the divisor used for each channel

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows * (self.tile_height + self.gap) - self.gap,
                self.columns * (self.tile_width + self.gap) - self.gap)

    def tile_origin(self, channel: int) -> tuple[int, int]:
        """Mosaic (row, col) of the top-left pixel of ``channel``'s tile."""
        grid_row, grid_col = divmod(channel, self.columns)
        return grid_row * (self.tile_height + self.gap), grid_col * (self.tile_width + self.gap)

    def channel_at(self, row: int, col: int) -> tuple[int, int, int] | None:
        """(channel, y, x) under mosaic pixel (row, col); None over a gap, an empty cell or outside."""
        if row < 0 or col < 0:
            return None
        grid_row, y = divmod(int(row), self.tile_height + self.gap)
        grid_col, x = divmod(int(col), self.tile_width + self.gap)
        if y >= self.tile_height or x >= self.tile_width or grid_col >= self.columns:
            return None
        channel = grid_row * self.columns + grid_col
        return (channel, y, x) if channel < self.channels else None


def default_columns(channels: int, tile_height: int, tile_width: int) -> int:
    """Columns that make the mosaic roughly square."""
    return max(1, min(channels, math.ceil(math.sqrt(channels * tile_height / tile_width))))


@dataclasses.dataclass(frozen=True)
class GridPlan:
    """How a layer fills a screen area: every ``stride``-th pixel, each shown as ``zoom`` x ``zoom``
    screen pixels, in ``columns`` columns with one-pixel gaps; ``fits`` is False when even one pixel
    per value does not fit (the view then has to scale the mosaic down)."""

    stride: int
    zoom: int
    columns: int
    fits: bool


def plan_grid(shape: tuple[int, int, int], height: int, width: int, min_stride: int = 1,
              gap: int = 1) -> GridPlan:
    """The largest whole-pixel zoom (else the smallest stride) at which a (C, h, w) layer's tiles
    fit ``height`` x ``width`` screen pixels, so every tile and gap lands on whole pixels."""
    channels, tile_height, tile_width = shape
    stride = max(1, min_stride)
    while True:
        h, w = -(-tile_height // stride), -(-tile_width // stride)
        for zoom in range(max(1, min(height // h, width // w)), 0, -1):
            columns = _fitting_columns(channels, h * zoom, w * zoom, height, width, gap)
            if columns:
                return GridPlan(stride, zoom, columns, True)
        if h == 1 and w == 1:
            return GridPlan(stride, 1, default_columns(channels, height, width), False)
        stride += 1


@functools.lru_cache(maxsize=256)
def _fitting_columns(channels: int, tile_height: int, tile_width: int, height: int, width: int,
                     gap: int) -> int:
    """Among column counts whose mosaic fits, the one leaving the fewest empty cells, then the one
    closest to the area's aspect; 0 if none fits."""
    best: tuple[int, float, int] | None = None
    for columns in range(1, channels + 1):
        rows = -(-channels // columns)
        mosaic_width = columns * (tile_width + gap) - gap
        mosaic_height = rows * (tile_height + gap) - gap
        if mosaic_width > width or mosaic_height > height:
            continue
        aspect_miss = abs(math.log(mosaic_width / mosaic_height) - math.log(width / height))
        candidate = (rows * columns - channels, aspect_miss, columns)
        best = candidate if best is None else min(best, candidate)
    return 0 if best is None else best[2]


def feature_mosaic(features: np.ndarray, scale_mode: str = "shared", columns: int | None = None,
                   gap: int = 1, zoom: int = 1) -> tuple[np.ndarray, MosaicLayout]:
    """(C, h, w) activations -> (mosaic float32 in [-1, 1], NaN in the gaps; its layout).

    ``scale_mode`` "shared": one robust scale for the whole layer (channels comparable);
    "channel": each channel scaled on its own (weak channels visible).  ``zoom`` repeats each value
    as a zoom x zoom block (the layout's tiles are that much larger).
    """
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 3:
        raise ColormapError(f"features must be (channels, height, width), got shape {features.shape}")
    if scale_mode not in SCALE_MODES:
        raise ColormapError(f"unknown scale {scale_mode!r}; use one of: {', '.join(SCALE_MODES)}")
    count, height, width = features.shape
    if scale_mode == "shared":
        scales = np.full(count, robust_scale(features), dtype=np.float32)
    else:
        scales = robust_scale(features.reshape(count, -1), axis=(1,)).reshape(count)
    columns = default_columns(count, height, width) if columns is None else max(1, int(columns))
    normalised = np.clip(features / scales[:, None, None], -1.0, 1.0)
    if zoom > 1:
        normalised = normalised.repeat(zoom, axis=1).repeat(zoom, axis=2)
        height, width = height * zoom, width * zoom
    layout = MosaicLayout(channels=count, rows=max(1, math.ceil(count / columns)), columns=columns,
                          tile_height=height, tile_width=width, gap=gap,
                          scales=tuple(float(s) for s in scales))
    mosaic = np.full(layout.shape, np.nan, dtype=np.float32)
    for channel in range(count):
        top, left = layout.tile_origin(channel)
        mosaic[top:top + height, left:left + width] = normalised[channel]
    return mosaic, layout


def feature_grid_image(features: np.ndarray, scale_mode: str = "shared",
                       palette: str = DEFAULT_PALETTE, columns: int | None = None, gap: int = 1,
                       min_tile: int = 32) -> np.ndarray:
    """uint8 RGB grid of a layer's channels; tiles smaller than ``min_tile`` are enlarged (nearest)."""
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 3:
        raise ColormapError(f"features must be (channels, height, width), got shape {features.shape}")
    zoom = max(1, math.ceil(min_tile / max(features.shape[1:])))
    if zoom > 1:
        features = features.repeat(zoom, axis=1).repeat(zoom, axis=2)
    mosaic, _ = feature_mosaic(features, scale_mode, columns=columns, gap=gap)
    return colorize(mosaic, 1.0, palette)
