"""Turning a resolution-independent ``Mask`` into a soft (h, w) array for one layer.

A mask is a function of continuous, normalised image coordinates (x in [0, 1] left to right, y in
[0, 1] top to bottom; radii and feathering in units of the image height).  ``rasterize`` averages that
function over each pixel's area by supersampling, so the same mask at 8x4 equals the 128x64 raster
shrunk by area averaging: an edit drawn at one layer lands in the same place at every other layer.
"""

from __future__ import annotations

import math

import numpy as np

from ganinterface.engine.scene import Bitmap, Mask, Rect, Shape, Stroke

# Rasters are computed on a grid at least this many samples across, then box-averaged to (h, w).
MIN_SAMPLES = 64


class MaskError(ValueError):
    """A mask that cannot be drawn (e.g. a non-positive scale); the message says why."""


def rasterize(mask: Mask, height: int, width: int) -> np.ndarray:
    """Soft coverage of ``mask`` at each pixel of an (height, width) grid: float32 in [0, 1]."""
    if height < 1 or width < 1:
        raise MaskError(f"cannot rasterize a mask at {width} × {height} px")
    if mask.is_empty():
        return np.zeros((height, width), dtype=np.float32)
    if not mask.scale > 0 or not math.isfinite(mask.scale):
        raise MaskError(f"mask scale must be positive, got {mask.scale}")
    factor = max(1, math.ceil(MIN_SAMPLES / min(height, width)))
    rows, cols = height * factor, width * factor
    # Sample points (pixel centres of the fine grid), mapped back through the mask's placement:
    # placed = c + scale * (p - c) + d   <=>   p = c + (placed - d - c) / scale
    xs = ((np.arange(cols) + 0.5) / cols - mask.dx - mask.cx) / mask.scale + mask.cx
    ys = ((np.arange(rows) + 0.5) / rows - mask.dy - mask.cy) / mask.scale + mask.cy
    samples = _SampleGrid(xs=xs, ys=ys, aspect=width / height,
                          pixels_per_frame=(height / mask.scale, width / mask.scale))
    coverage = np.zeros((rows, cols), dtype=np.float64)
    for shape in mask.shapes:
        painted = _shape_coverage(shape, samples)
        if shape.erase:
            coverage *= 1.0 - painted
        else:
            np.maximum(coverage, painted, out=coverage)
    coverage = coverage.reshape(height, factor, width, factor).mean(axis=(1, 3))
    return np.clip(coverage, 0.0, 1.0).astype(np.float32)


class _SampleGrid:
    """Separable sample coordinates; x is also given in image heights so distances are isotropic."""

    def __init__(self, xs: np.ndarray, ys: np.ndarray, aspect: float,
                 pixels_per_frame: tuple[float, float]):
        self.xs, self.ys, self.aspect = xs, ys, aspect
        self.pixels_per_frame = pixels_per_frame  # output pixels across one unplaced frame (y, x)
        self.x_heights = xs * aspect  # x measured in image heights

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.ys), len(self.xs)


def _shape_coverage(shape: Shape, grid: _SampleGrid) -> np.ndarray:
    if isinstance(shape, Stroke):
        return _stroke_coverage(shape, grid)
    if isinstance(shape, Rect):
        return _rect_coverage(shape, grid)
    if isinstance(shape, Bitmap):
        return _bitmap_coverage(shape, grid)
    raise MaskError(f"unknown mask shape {type(shape).__name__}")


def _falloff(distance: np.ndarray, radius: float, softness: float) -> np.ndarray:
    """1 up to the inner radius, a smooth ramp down to 0 at ``radius`` (hard edge if softness 0)."""
    softness = min(max(softness, 0.0), 1.0)
    feather = radius * softness
    if feather <= 0:
        return (distance <= radius).astype(np.float64)
    t = np.clip((distance - (radius - feather)) / feather, 0.0, 1.0)
    return 1.0 - t * t * (3.0 - 2.0 * t)


def _stroke_coverage(stroke: Stroke, grid: _SampleGrid) -> np.ndarray:
    """Capsules of ``stroke.radius`` around each segment of the polyline (a disc for one point)."""
    coverage = np.zeros(grid.shape, dtype=np.float64)
    if not stroke.points or stroke.radius <= 0:
        return coverage
    points = np.array(stroke.points, dtype=np.float64).reshape(-1, 2) * (grid.aspect, 1.0)
    starts = points[:-1] if len(points) > 1 else points
    ends = points[1:] if len(points) > 1 else points
    for first in range(0, len(starts), SEGMENTS_PER_CHUNK):
        chunk = slice(first, first + SEGMENTS_PER_CHUNK)
        _paint_segments(coverage, grid, starts[chunk], ends[chunk], stroke.radius, stroke.softness)
    return coverage


SEGMENTS_PER_CHUNK = 16  # neighbouring segments measured together: few numpy calls per stroke


def _paint_segments(coverage: np.ndarray, grid: _SampleGrid, starts: np.ndarray, ends: np.ndarray,
                    radius: float, softness: float) -> None:
    """Distance from every sample in the segments' bounding box (grown by the radius) to the
    nearest of the segments, turned into coverage and merged (max) into ``coverage``."""
    low = np.minimum(starts, ends).min(axis=0) - radius
    high = np.maximum(starts, ends).max(axis=0) + radius
    # sample coordinates ascend, so the reachable ones form a contiguous window
    col0 = int(np.searchsorted(grid.x_heights, low[0], side="left"))
    col1 = int(np.searchsorted(grid.x_heights, high[0], side="right"))
    row0 = int(np.searchsorted(grid.ys, low[1], side="left"))
    row1 = int(np.searchsorted(grid.ys, high[1], side="right"))
    if col1 <= col0 or row1 <= row0:
        return
    px = grid.x_heights[col0:col1][None, None, :]
    py = grid.ys[row0:row1][None, :, None]
    ax, ay = starts[:, 0, None, None], starts[:, 1, None, None]
    dx, dy = ends[:, 0, None, None] - ax, ends[:, 1, None, None] - ay
    length2 = dx * dx + dy * dy
    along = ((px - ax) * dx + (py - ay) * dy) / np.where(length2 > 0, length2, 1.0)
    t = np.where(length2 > 0, np.clip(along, 0.0, 1.0), 0.0)
    distance = np.hypot(px - (ax + t * dx), py - (ay + t * dy)).min(axis=0)
    window = coverage[row0:row1, col0:col1]
    np.maximum(window, _falloff(distance, radius, softness), out=window)


def _rect_coverage(rect: Rect, grid: _SampleGrid) -> np.ndarray:
    x0, x1 = sorted((rect.x0 * grid.aspect, rect.x1 * grid.aspect))
    y0, y1 = sorted((rect.y0, rect.y1))
    inside_x = np.minimum(grid.x_heights - x0, x1 - grid.x_heights)[None, :]
    inside_y = np.minimum(grid.ys - y0, y1 - grid.ys)[:, None]
    depth = np.minimum(inside_x, inside_y)  # distance to the nearest edge, negative outside
    feather = min(max(rect.softness, 0.0), 1.0) * 0.5 * min(x1 - x0, y1 - y0)
    if feather <= 0:
        return (depth >= 0).astype(np.float64)
    t = np.clip(depth / feather, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _bitmap_coverage(bitmap: Bitmap, grid: _SampleGrid) -> np.ndarray:
    """The bitmap spans the whole frame (zero outside it).

    Shrinking (output pixels no finer than the bitmap's cells): each cell is a constant patch, so the
    pixel average is an exact area resize.  Enlarging: bilinear between cell centres, for smooth edges.
    """
    values = np.clip(np.nan_to_num(bitmap.values.astype(np.float64)), 0.0, 1.0)
    bh, bw = values.shape
    out_h, out_w = grid.pixels_per_frame
    if out_h <= bh and out_w <= bw:
        rows = np.clip(np.floor(grid.ys * bh).astype(int), 0, bh - 1)
        cols = np.clip(np.floor(grid.xs * bw).astype(int), 0, bw - 1)
        sampled = values[rows][:, cols]
    else:
        u = np.clip(grid.xs * bw - 0.5, 0.0, bw - 1.0)
        v = np.clip(grid.ys * bh - 0.5, 0.0, bh - 1.0)
        u0 = np.minimum(np.floor(u).astype(int), bw - 1)
        v0 = np.minimum(np.floor(v).astype(int), bh - 1)
        u1, v1 = np.minimum(u0 + 1, bw - 1), np.minimum(v0 + 1, bh - 1)
        fu, fv = (u - u0)[None, :], (v - v0)[:, None]
        top = values[v0][:, u0] * (1 - fu) + values[v0][:, u1] * fu
        bottom = values[v1][:, u0] * (1 - fu) + values[v1][:, u1] * fu
        sampled = top * (1 - fv) + bottom * fv
    in_frame = ((grid.ys >= 0) & (grid.ys < 1))[:, None] & ((grid.xs >= 0) & (grid.xs < 1))[None, :]
    return np.where(in_frame, sampled, 0.0)


def image_margin(margin: float, height: int, width: int) -> int:
    """Whole pixels of border around the image in a layer's maps (StyleGAN3 layers carry some)."""
    m = int(round(margin))
    if m < 0 or 2 * m >= min(height, width):
        raise MaskError(f"a margin of {margin} pixels leaves no image in a {width} × {height} px map")
    return m


def rasterize_layer(mask: Mask, height: int, width: int, margin: float = 0.0) -> np.ndarray:
    """``rasterize`` for a layer whose (height, width) maps hold the image inside ``margin`` pixels of
    border: the mask covers the image part only, the border stays 0."""
    m = image_margin(margin, height, width)
    if m == 0:
        return rasterize(mask, height, width)
    return np.pad(rasterize(mask, height - 2 * m, width - 2 * m), m)

