"""Feature maps: pick a layer, see all its channels as one mosaic, find and select channels to edit.

The mosaic is one float image drawn by one ``pg.ImageItem`` with fixed levels (-1, 1) and a
diverging lookup table (red negative, white zero, green positive), so a layer with hundreds of
channels costs one texture upload per render.  Gaps between tiles are NaN (drawn transparent).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainterPath, QPen
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QGraphicsPathItem,
                               QGroupBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPushButton,
                               QSpinBox, QSplitter, QTableWidget, QTableWidgetItem, QTreeWidget,
                               QTreeWidgetItem, QVBoxLayout, QWidget)

from ganinterface.engine import colormap
from ganinterface.engine.kinds.feature import format_channels, parse_channels
from ganinterface.models import size_text
from ganinterface.ui.elided_label import ElidedLabel


TOP_CHANNELS = 8  # the ranked channels "Select" takes unless told otherwise, all shown in the table
RANK_ROW_HEIGHT = 20
MAX_GRID_VALUES = 4_000_000  # a bigger layer is shown at every k-th pixel to keep the GUI quick


def grid_stride(shape: tuple[int, ...]) -> int:
    """k such that showing every k-th pixel of a (C, h, w) layer stays under MAX_GRID_VALUES."""
    channels, height, width = shape
    return max(1, int(np.ceil(np.sqrt(channels * height * width / MAX_GRID_VALUES))))


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def palette_lut(palette: str) -> np.ndarray:
    return colormap.diverging_lut(palette)


class MosaicView(pg.GraphicsLayoutWidget):
    """The channel grid, one mosaic pixel per screen pixel (tiles and gaps on whole pixels); emits
    hover (channel, y, x, value) in the shown features' pixels, clicks (channel, modifiers), and
    ``resized`` so the panel can lay the grid out for the new size."""

    hovered = Signal(object)  # (channel, y, x, value) or None
    clicked = Signal(int, object)  # channel, Qt.KeyboardModifiers
    resized = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setBackground(QColor(64, 64, 64))
        self.ci.layout.setContentsMargins(0, 0, 0, 0)
        self.view = self.addViewBox(invertY=True, enableMenu=False)
        self.view.setMouseEnabled(False, False)  # the grid always fits: zooming would blur it
        self.view.disableAutoRange()  # a deferred auto-range would undo the one-to-one range
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.image_item)
        self._selection = QGraphicsPathItem()
        pen = QPen(QColor(255, 200, 0), 2)
        pen.setCosmetic(True)
        self._selection.setPen(pen)
        self._selection.setZValue(10)
        self.view.addItem(self._selection)
        self.layout_info: colormap.MosaicLayout | None = None
        self.features: np.ndarray | None = None
        self.zoom = 1
        self.scene().sigMouseMoved.connect(self._moved)
        self.scene().sigMouseClicked.connect(self._clicked)

    def available_pixels(self) -> tuple[int, int]:
        """(height, width) of the drawing area in device pixels."""
        ratio = self.devicePixelRatioF()
        return int(self.viewport().height() * ratio), int(self.viewport().width() * ratio)

    def show_mosaic(self, mosaic: np.ndarray, layout: colormap.MosaicLayout,
                    features: np.ndarray, lut: np.ndarray, zoom: int = 1) -> None:
        self.layout_info, self.features, self.zoom = layout, features, zoom
        self.image_item.setImage(mosaic, levels=(-1.0, 1.0), lut=lut, autoLevels=False)
        self._one_to_one(*layout.shape)

    def _one_to_one(self, mosaic_height: int, mosaic_width: int) -> None:
        """Centre the mosaic with one mosaic pixel per device pixel, its edges on whole pixels;
        a mosaic larger than the view is scaled down to fit instead."""
        height, width = self.available_pixels()
        if mosaic_height > height or mosaic_width > width:
            self.view.setAspectLocked(True)
            self.view.autoRange(padding=0)
            return
        self.view.setAspectLocked(False)
        left = -((width - mosaic_width) // 2)
        top = -((height - mosaic_height) // 2)
        self.view.setRange(xRange=(left, left + width), yRange=(top, top + height), padding=0)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        super().resizeEvent(event)
        self.resized.emit()

    def show_selection(self, channels: tuple[int, ...]) -> None:
        path = QPainterPath()
        layout = self.layout_info
        if layout is not None:
            for channel in channels:
                if channel < layout.channels:
                    top, left = layout.tile_origin(channel)
                    path.addRect(QRectF(left - 0.5, top - 0.5, layout.tile_width + 1,
                                        layout.tile_height + 1))
        self._selection.setPath(path)

    def _locate(self, scene_pos) -> tuple[int, int, int] | None:
        if self.layout_info is None:
            return None
        point = self.view.mapSceneToView(scene_pos)
        return self.layout_info.channel_at(int(np.floor(point.y())), int(np.floor(point.x())))

    def _moved(self, scene_pos) -> None:
        hit = self._locate(scene_pos)
        if hit is None or self.features is None:
            self.hovered.emit(None)
            return
        channel, y, x = hit[0], hit[1] // self.zoom, hit[2] // self.zoom
        self.hovered.emit((channel, y, x, float(self.features[channel, y, x])))

    def _clicked(self, event) -> None:
        hit = self._locate(event.scenePos())
        if hit is not None and event.button() == Qt.MouseButton.LeftButton:
            event.accept()
            self.clicked.emit(hit[0], event.modifiers())


class FeaturesPanel(QWidget):
    """Layer list, mosaic, channel selection and ranking.  Holds view state only, not the Scene."""

    layer_changed = Signal(str)
    channel_opened = Signal(int)  # show this channel large / over the image
    selection_changed = Signal(tuple)
    rank_requested = Signal()
    propose_requested = Signal()
    display_changed = Signal()  # palette or scale changed: redraw channel views too

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.layers = QTreeWidget()
        self.layers.setHeaderLabels(["Layer", "Channels", "Size"])
        self.layers.setRootIsDecorated(False)
        self.layers.setToolTip("Synthesis layers in execution order; pick one to see its channels")
        self.layers.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.mosaic = MosaicView()
        self.mosaic.setToolTip("Every channel of the layer. Hover: channel and value. "
                               "Click: open the channel. Ctrl+click: select it for editing.")
        self.scale = QComboBox()
        self.scale.addItem("Shared scale", "shared")
        self.scale.addItem("Per-channel scale", "channel")
        self.scale.setToolTip("Shared: channels comparable. Per-channel: weak channels visible.")
        self.palette = QComboBox()
        self.palette.addItem("Red / white / green", "red-white-green")
        self.palette.addItem("Orange / white / blue (colour-blind safe)", "colour-blind")
        self.readout = QLabel("Hover over the grid")
        self.readout.setMinimumWidth(120)
        self.selected = QLineEdit()
        self.selected.setPlaceholderText("e.g. 3, 17, 40-42 (empty: all channels)")
        self.selected.setToolTip("Channels that painting edits: type them, Ctrl+click tiles, "
                                 "or rank them by a region")
        self.rank_button = QPushButton("Rank channels by region")
        self.rank_button.setToolTip("Mark a region on the image with the Region tool (M) first; "
                                    "channels more active inside than outside come first")
        self.rank_seeds = QLineEdit()
        self.rank_seeds.setPlaceholderText("seeds, e.g. 0-31")
        self.rank_seeds.setToolTip("Seeds to rank over, e.g. 0-31 (empty: this portrait). "
                                   "Average the ranking over several portraits (without edits), "
                                   "so the channels found work beyond this one")
        self.seeds_a = QLineEdit()
        self.seeds_a.setPlaceholderText("seeds with it: 3, 8")
        self.seeds_b = QLineEdit()
        self.seeds_b.setPlaceholderText("without it: 1, 5")
        self.propose = QPushButton("Propose edit")
        self.propose.setToolTip("Find the channels whose activation in the marked region differs "
                                "most between the two sets of seeds, and add edits that make "
                                "this portrait look like the first set there")
        self.top_count = QSpinBox()
        self.top_count.setRange(1, 512)
        self.top_count.setValue(TOP_CHANNELS)
        self.top_count.setPrefix("top ")
        self.select_top = QPushButton("Select")
        self.select_top.setToolTip("Select the top-ranked channels for painting")
        self.ranking = QTableWidget(0, 4)
        self.ranking.setHorizontalHeaderLabels(["Channel", "Score", "Inside", "Outside"])
        self.ranking.verticalHeader().hide()
        self.ranking.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.ranking.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.ranking.verticalHeader().setDefaultSectionSize(RANK_ROW_HEIGHT)
        self.ranking.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.ranking.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.ranking.setMinimumHeight(self.ranking.horizontalHeader().sizeHint().height()
                                      + TOP_CHANNELS * RANK_ROW_HEIGHT
                                      + 2 * self.ranking.frameWidth())
        self.ranking.setToolTip("Channels ranked by (mean inside − mean outside) / std. "
                                "Double-click a row to open the channel")
        self.overlay = QCheckBox("Overlay opened channel on image")

        display = QHBoxLayout()
        display.addWidget(self.scale)
        display.addWidget(self.palette, 1)
        selection = QHBoxLayout()
        selection.addWidget(QLabel("Edit channels"))
        selection.addWidget(self.selected, 1)
        rank = QHBoxLayout()
        rank.addWidget(self.rank_button)
        rank.addWidget(self.rank_seeds, 1)
        rank.addWidget(self.top_count)
        rank.addWidget(self.select_top)
        grid = QWidget()
        grid_layout = QVBoxLayout(grid)
        grid_layout.setContentsMargins(0, 0, 0, 0)
        grid_layout.addLayout(display)
        grid_layout.addWidget(self.mosaic, 1)
        grid_layout.addWidget(self.readout)
        grid_layout.addLayout(selection)
        grid_layout.addWidget(self.overlay)
        finder = QGroupBox("Find channels in the marked region (Region tool, M)")
        finder_layout = QVBoxLayout(finder)
        finder_layout.setContentsMargins(4, 4, 4, 4)
        finder_layout.addLayout(rank)
        examples = QHBoxLayout()
        examples.addWidget(self.seeds_a, 1)
        examples.addWidget(self.seeds_b, 1)
        examples.addWidget(self.propose)
        finder_layout.addLayout(examples)
        finder_layout.addWidget(self.ranking, 1)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.layers)
        splitter.addWidget(grid)
        splitter.addWidget(finder)
        splitter.setStretchFactor(1, 4)
        splitter.setSizes([120, 420, 230])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(splitter)

        self._layer_infos: dict[str, object] = {}
        self._features: np.ndarray | None = None
        self._stride = 1
        self._ranked: list[int] = []
        self.layers.currentItemChanged.connect(self._layer_picked)
        self.scale.currentIndexChanged.connect(self._redraw)
        self.palette.currentIndexChanged.connect(self._redraw)
        self.mosaic.hovered.connect(self._show_hover)
        self.mosaic.resized.connect(self._redraw)
        self.mosaic.clicked.connect(self._tile_clicked)
        self.selected.editingFinished.connect(self._selection_typed)
        self.rank_button.clicked.connect(self.rank_requested.emit)
        self.propose.clicked.connect(self.propose_requested.emit)
        self.select_top.clicked.connect(self._select_top)
        self.ranking.cellDoubleClicked.connect(
            lambda row, _col: self.channel_opened.emit(self._ranked[row]))

    # ---- model ---------------------------------------------------------------------------------
    def set_layers(self, layers: tuple) -> None:
        """Fill the layer list (LayerInfo tuple) and pick a middle conv layer to start with."""
        self.layers.blockSignals(True)
        self.layers.clear()
        self._layer_infos = {info.name: info for info in layers}
        for info in layers:
            size = size_text(info.width, info.height)
            item = QTreeWidgetItem([info.name, str(info.channels), size])
            item.setData(0, Qt.ItemDataRole.UserRole, info.name)
            self.layers.addTopLevelItem(item)
        for column in range(3):
            self.layers.resizeColumnToContents(column)
        self.layers.blockSignals(False)
        convs = [i for i, info in enumerate(layers) if getattr(info, "kind", "conv") == "conv"]
        if layers:
            start = convs[len(convs) // 2] if convs else 0
            self.layers.setCurrentItem(self.layers.topLevelItem(start))

    def current_layer(self) -> str:
        item = self.layers.currentItem()
        return item.data(0, Qt.ItemDataRole.UserRole) if item is not None else ""

    def set_current_layer(self, name: str) -> None:
        for row in range(self.layers.topLevelItemCount()):
            item = self.layers.topLevelItem(row)
            if item.data(0, Qt.ItemDataRole.UserRole) == name:
                self.layers.setCurrentItem(item)
                return

    def channel_count(self) -> int:
        info = self._layer_infos.get(self.current_layer())
        return int(getattr(info, "channels", 0))

    def scale_mode(self) -> str:
        return self.scale.currentData()

    def palette_name(self) -> str:
        return self.palette.currentData()

    # ---- features ------------------------------------------------------------------------------
    def show_features(self, features: np.ndarray | None) -> None:
        self._features = features
        self._redraw()

    def features(self) -> np.ndarray | None:
        return self._features

    def _redraw(self, *_: object) -> None:
        if self._features is None:
            return
        height, width = self.mosaic.available_pixels()
        plan = colormap.plan_grid(self._features.shape, height, width,
                                  min_stride=grid_stride(self._features.shape))
        self._stride = plan.stride
        shown = self._features[:, ::plan.stride, ::plan.stride]
        mosaic, layout = colormap.feature_mosaic(shown, self.scale_mode(), columns=plan.columns,
                                                 zoom=plan.zoom)
        self.mosaic.show_mosaic(mosaic, layout, shown, palette_lut(self.palette_name()), plan.zoom)
        self.mosaic.show_selection(self.selected_channels())
        self.display_changed.emit()

    def _show_hover(self, hit: object) -> None:
        if hit is None:
            self.readout.setText(f"Layer {self.current_layer()}")
            return
        channel, y, x, value = hit
        x, y = x * self._stride, y * self._stride
        every = f"  (grid shows every {_ordinal(self._stride)} pixel)" if self._stride > 1 else ""
        self.readout.setText(f"channel {channel}  at ({x}, {y})  value {value:+.3f}{every}")

    def _layer_picked(self, *_: object) -> None:
        self._ranked = []
        self.ranking.setRowCount(0)
        self.selected.clear()
        self.mosaic.show_selection(())
        self.layer_changed.emit(self.current_layer())

    # ---- selection -----------------------------------------------------------------------------
    def selected_channels(self) -> tuple[int, ...]:
        try:
            return parse_channels(self.selected.text(), self.channel_count())
        except ValueError:
            return ()

    def set_selected_channels(self, channels: tuple[int, ...]) -> None:
        self.selected.setText(format_channels(channels))
        self.mosaic.show_selection(channels)
        self.selection_changed.emit(tuple(channels))

    def _selection_typed(self) -> None:
        try:
            channels = parse_channels(self.selected.text(), self.channel_count())
        except ValueError as error:
            self.selected.setToolTip(str(error))
            self.selected.setStyleSheet("border: 1px solid #d04040;")
            return
        self.selected.setStyleSheet("")
        self.set_selected_channels(channels)

    def _tile_clicked(self, channel: int, modifiers: object) -> None:
        if modifiers & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier):
            current = list(self.selected_channels())
            if channel in current:
                current.remove(channel)
            else:
                current.append(channel)
            self.set_selected_channels(tuple(current))
        else:
            self.channel_opened.emit(channel)

    def show_ranking(self, scores: list) -> None:
        """Fill the table from engine ``ChannelScore`` items, best first."""
        self._ranked = [int(s.channel) for s in scores]
        self.ranking.setRowCount(len(scores))
        for row, score in enumerate(scores):
            for column, value in enumerate((score.channel, score.score, score.inside, score.outside)):
                text = str(value) if column == 0 else f"{float(value):+.3f}"
                self.ranking.setItem(row, column, QTableWidgetItem(text))

    def _select_top(self) -> None:
        if self._ranked:
            self.set_selected_channels(tuple(self._ranked[:self.top_count.value()]))


class ChannelView(QWidget):
    """One channel enlarged, in the same colours as the grid; the paint tools work here too."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from ganinterface.ui.canvas import ImageCanvas

        self.title = ElidedLabel("Click a tile in the feature grid\nto open its channel here", lines=2)
        self.canvas = ImageCanvas()
        self.canvas.set_smooth(False)  # a channel's own pixels: show its true resolution
        self.canvas.setToolTip("The opened channel. Paint here with the Brush or Rectangle tool: "
                               "the edit goes to the selected channels of this layer")
        self.readout = ElidedLabel()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.title)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.readout)
        self.channel: int | None = None
        self.values: np.ndarray | None = None
        self.canvas.hovered.connect(self._hovered)

    def show_channel(self, layer: str, channel: int, values: np.ndarray, palette: str) -> float:
        """Show ``values`` (h, w) coloured over (-bound, bound), bound = max |value|; returns bound."""
        self.channel, self.values = channel, values
        bound = float(np.max(np.abs(values))) or 1.0
        self.canvas.set_image(colormap.colorize(values, bound, palette))
        height, width = values.shape
        self.title.setText(f"{layer} · channel {channel} · {size_text(width, height)}\n"
                           f"min {values.min():+.3f}, max {values.max():+.3f} · white 0, "
                           f"full colour ±{bound:.3f}")
        return bound

    def _hovered(self, pixel: tuple[int, int] | None) -> None:
        if pixel is None or self.values is None:
            self.readout.setText("")
            return
        x, y = pixel
        self.readout.setText(f"channel {self.channel} at ({x}, {y}): {self.values[y, x]:+.4f}")
