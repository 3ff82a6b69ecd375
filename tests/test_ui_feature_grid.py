"""The feature grid as drawn on screen: tiles and gaps on whole pixels, filling the space it has."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QWidget

from ganinterface.engine.colormap import GAP_COLOUR
from ganinterface.models.base import LayerInfo
from ganinterface.ui.features_panel import FeaturesPanel


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, length) of each run of True."""
    runs, start = [], None
    for i, flag in enumerate(list(flags) + [False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            runs.append((start, i - start))
            start = None
    return runs


def _screen(panel: FeaturesPanel) -> np.ndarray:
    """The grid as painted, (H, W, 3) RGB; pixels it leaves unpainted read as the gap colour."""
    image = QImage(panel.mosaic.size(), QImage.Format.Format_RGB32)
    image.fill(QColor(*GAP_COLOUR))
    QWidget.render(panel.mosaic, image)  # the widget, not QGraphicsView.render's scene
    bgra = np.array(image.constBits(), dtype=np.uint8).reshape(image.height(), image.width(), 4)
    return bgra[:, :, 2::-1]


@pytest.mark.parametrize("shape, size", [((128, 8, 4), (470, 260)), ((64, 32, 16), (470, 260)),
                                         ((30, 16, 16), (300, 420))])
def test_tiles_and_gaps_land_on_whole_pixels_and_fill_the_panel(qtbot, shape, size):
    channels, height, width = shape
    panel = FeaturesPanel()
    qtbot.addWidget(panel)
    panel.mosaic.setFixedSize(*size)
    panel.show()
    qtbot.waitExposed(panel)
    panel.set_layers((LayerInfo("b.conv", channels, height, width, (0,)),))
    features = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    panel.show_features(features)
    zoom, layout = panel.mosaic.zoom, panel.mosaic.layout_info

    screen = _screen(panel)
    background = np.all(screen == GAP_COLOUR, axis=2)
    rows, cols = np.where(~background)
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    assert (bottom - top, right - left) == layout.shape  # one mosaic pixel per screen pixel
    grid = background[top:bottom, left:right]
    gap_columns = _runs(grid[:layout.tile_height].all(axis=0))  # gaps between the first row's tiles
    gap_rows = _runs(grid[:, :layout.tile_width].all(axis=1))
    assert [length for _, length in gap_columns] == [1] * (min(channels, layout.columns) - 1)
    assert [length for _, length in gap_rows] == [1] * (layout.rows - 1)
    assert {start for start, _ in gap_columns} == {(width * zoom + 1) * k - 1
                                                   for k in range(1, len(gap_columns) + 1)}
    # the grid fills what it has: with one-pixel-larger zoom no column count would fit
    area_width, area_height = size
    larger = [c for c in range(1, channels + 1)
              if c * (width * (zoom + 1) + 1) - 1 <= area_width
              and -(-channels // c) * (height * (zoom + 1) + 1) - 1 <= area_height]
    assert not larger
