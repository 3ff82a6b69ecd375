"""The image view: zoom and pan, value readout, and the painting tools that turn drags into masks.

Coordinates leave this widget normalised (x, y in [0, 1], origin top-left), the way masks are stored
in a Scene, so the canvas never needs to know which layer an edit goes to.
"""

from __future__ import annotations

import enum

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsPathItem, QGraphicsRectItem


class Tool(enum.Enum):
    PAN = "pan"
    BRUSH = "brush"
    RECT = "rect"
    REGION = "region"  # mark the region that "rank channels" compares against the rest
    RESAMPLE = "resample"  # regenerate a rectangle of the current layer from another seed
    FILL = "fill"  # fill a rectangle of the current layer with the features around it


class CanvasImageItem(pg.ImageItem):
    """An ImageItem that draws smoothly when enlarged, or as crisp pixels when ``smooth`` is off.

    At 1:1 (see ``ImageCanvas.actual_size``) every image pixel lands on one screen pixel either way.
    """

    def __init__(self) -> None:
        super().__init__(axisOrder="row-major")
        self.smooth = True

    def paint(self, painter: QPainter, *args: object) -> None:
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.smooth)
        super().paint(painter, *args)


class _ToolViewBox(pg.ViewBox):
    """A ViewBox that hands drags to the active tool instead of panning (except in PAN mode)."""

    def __init__(self, canvas: "ImageCanvas") -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False)
        self._canvas = canvas

    def mouseDragEvent(self, ev, axis=None) -> None:  # noqa: N802 (Qt naming)
        if self._canvas.tool is Tool.PAN or ev.button() == Qt.MouseButton.MiddleButton:
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        if ev.isStart():  # the drag is recognised a few pixels on: begin where the button went down
            pressed = self.mapSceneToView(ev.buttonDownScenePos(ev.button()))
            self._canvas._drag(pressed, ev.button(), True, False)
        point = self.mapSceneToView(ev.scenePos())
        self._canvas._drag(point, ev.button(), False, ev.isFinish())


class ImageCanvas(pg.GraphicsView):
    """Shows an RGB uint8 image; emits painted shapes and hover positions.

    Signals carry normalised coordinates; ``sign`` is +1 for the left button, -1 for the right.
    """

    stroke_changed = Signal(list, int, bool)  # points [(x, y)], sign, finished
    rect_changed = Signal(tuple, int, bool)  # (x0, y0, x1, y1), sign, finished
    region_marked = Signal(tuple)  # (x0, y0, x1, y1)
    resample_marked = Signal(tuple)  # (x0, y0, x1, y1)
    fill_marked = Signal(tuple)  # (x0, y0, x1, y1)
    hovered = Signal(object)  # (px, py) integer pixel, or None when outside the image

    def __init__(self, parent=None) -> None:
        super().__init__(parent, background=QColor(38, 38, 40))
        self.tool = Tool.PAN
        self.brush_radius = 0.05  # fraction of the image height
        self.view = _ToolViewBox(self)
        self.setCentralItem(self.view)
        self.image_item = CanvasImageItem()
        self.view.addItem(self.image_item)
        self.overlay_item = pg.ImageItem(axisOrder="row-major")
        self.overlay_item.setOpacity(0.9)
        self.overlay_item.setZValue(5)
        self.overlay_item.hide()
        self.view.addItem(self.overlay_item)
        self._stroke_path = QGraphicsPathItem()
        self._stroke_path.setZValue(10)
        self.view.addItem(self._stroke_path)
        self._rect_item = QGraphicsRectItem()
        self._rect_item.setZValue(10)
        self._rect_item.hide()
        self.view.addItem(self._rect_item)
        self.region_item = QGraphicsRectItem()
        self.region_item.setPen(_cosmetic_pen(QColor(255, 210, 0), Qt.PenStyle.DashLine))
        self.region_item.setZValue(11)
        self.region_item.hide()
        self.view.addItem(self.region_item)
        fill_colour = QColor(80, 220, 255)
        self._filled_item = QGraphicsRectItem()  # the last Fill: where it filled ...
        self._filled_item.setPen(_cosmetic_pen(fill_colour))
        self._source_item = QGraphicsRectItem()  # ... and where it copied from
        self._source_item.setPen(_cosmetic_pen(fill_colour, Qt.PenStyle.DotLine))
        for item in (self._filled_item, self._source_item):
            item.setZValue(11)
            item.hide()
            self.view.addItem(item)
        self.filled: tuple[tuple[float, ...], tuple[float, ...]] | None = None
        self._cursor = QGraphicsEllipseItem()
        self._cursor.setPen(_cosmetic_pen(QColor(255, 255, 255, 200)))
        self._cursor.setZValue(12)
        self._cursor.hide()
        self.view.addItem(self._cursor)
        self._points: list[tuple[float, float]] = []
        self._drag_start: QPointF | None = None
        self._sign = 1
        self._size = (0, 0)  # (height, width) of the image shown
        self.region: tuple[float, float, float, float] | None = None
        self.scene().sigMouseMoved.connect(self._mouse_moved)
        self.setToolTip("")

    # ---- image ---------------------------------------------------------------------------------
    def set_image(self, image: np.ndarray) -> None:
        """Show an (H, W, 3) uint8 image; the view keeps its zoom unless the size changed."""
        image = np.ascontiguousarray(image)
        new_size = image.shape[:2]
        self.image_item.setImage(image, autoLevels=False, levels=(0, 255))
        if new_size != self._size:
            self._size = new_size
            self.fit()
            self.set_region(self.region)  # drawn in image pixels: place it for the new size
            self.set_filled(self.filled)

    def image_size(self) -> tuple[int, int]:
        return self._size

    def fit(self) -> None:
        height, width = self._size
        if height and width:
            self.view.setRange(QRectF(0, 0, width, height), padding=0.02)

    def actual_size(self) -> None:
        """Zoom so one image pixel covers exactly one screen pixel, aligned to whole pixels."""
        if not self._size[0]:
            return
        centre = self.view.targetRect().center()
        width, height = self.view.width(), self.view.height()  # the view box, in screen pixels
        left, top = round(centre.x() - width / 2), round(centre.y() - height / 2)
        self.view.setRange(QRectF(left, top, width, height), padding=0)

    def set_smooth(self, smooth: bool) -> None:
        self.image_item.smooth = smooth
        self.image_item.update()

    def set_overlay(self, values: np.ndarray | None, lut: np.ndarray | None = None,
                    bound: float = 1.0) -> None:
        """Overlay a (h, w) map stretched over the image: coloured by ``lut`` over (-bound, bound),
        opaque where the value is strong and see-through near zero (None hides it)."""
        height, width = self._size
        if values is None or lut is None or not height:
            self.overlay_item.hide()
            return
        normalised = np.clip(np.asarray(values, dtype=np.float32) / max(bound, 1e-12), -1.0, 1.0)
        index = np.round((normalised + 1.0) * 0.5 * (len(lut) - 1)).astype(np.intp)
        rgba = np.empty(normalised.shape + (4,), dtype=np.uint8)
        rgba[..., :3] = lut[index]
        rgba[..., 3] = np.round(np.abs(normalised) * 230).astype(np.uint8)
        self.overlay_item.setImage(rgba, levels=(0, 255), autoLevels=False)
        self.overlay_item.setRect(QRectF(0, 0, width, height))
        self.overlay_item.show()

    def set_region(self, region: tuple[float, float, float, float] | None) -> None:
        self.region = region
        self._place(self.region_item, region)

    def set_filled(self, boxes: tuple[tuple[float, ...], tuple[float, ...]] | None) -> None:
        """Outline the box the last Fill filled (solid) and the box it copied from (dotted)."""
        self.filled = boxes
        self._place(self._filled_item, None if boxes is None else boxes[0])
        self._place(self._source_item, None if boxes is None else boxes[1])

    def _place(self, item: QGraphicsRectItem, box: tuple[float, ...] | None) -> None:
        """Show ``item`` over the normalised ``box`` of the image (hide it for None)."""
        height, width = self._size
        if box is None or not height:
            item.hide()
            return
        x0, y0, x1, y1 = box
        item.setRect(QRectF(x0 * width, y0 * height, (x1 - x0) * width, (y1 - y0) * height))
        item.show()

    # ---- tools ---------------------------------------------------------------------------------
    def set_tool(self, tool: Tool) -> None:
        self.tool = tool
        self._cursor.setVisible(tool is Tool.BRUSH)
        cursor = Qt.CursorShape.OpenHandCursor if tool is Tool.PAN else Qt.CursorShape.CrossCursor
        self.viewport().setCursor(cursor)

    def _normalised(self, point: QPointF) -> tuple[float, float]:
        height, width = self._size
        x = min(max(point.x() / max(width, 1), 0.0), 1.0)
        y = min(max(point.y() / max(height, 1), 0.0), 1.0)
        return (round(x, 5), round(y, 5))

    def _drag(self, point: QPointF, button: Qt.MouseButton, start: bool, finish: bool) -> None:
        if not self._size[0]:
            return
        if start:
            self._sign = -1 if button == Qt.MouseButton.RightButton else 1
            self._drag_start = point
            self._points = []
        if self.tool is Tool.BRUSH:
            self._brush_drag(point, finish)
        elif self._drag_start is not None:
            self._box_drag(point, finish)

    def _brush_drag(self, point: QPointF, finish: bool) -> None:
        normalised = self._normalised(point)
        if not self._points or self._points[-1] != normalised:
            self._points.append(normalised)
        height, width = self._size
        path = QPainterPath(QPointF(self._points[0][0] * width, self._points[0][1] * height))
        for x, y in self._points[1:]:
            path.lineTo(QPointF(x * width, y * height))
        colour = QColor(80, 220, 120, 90) if self._sign > 0 else QColor(240, 80, 80, 90)
        pen = QPen(colour, 2 * self.brush_radius * height)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        self._stroke_path.setPen(pen)
        self._stroke_path.setPath(path)
        self._stroke_path.setVisible(not finish)
        self.stroke_changed.emit(list(self._points), self._sign, finish)

    def _box_drag(self, point: QPointF, finish: bool) -> None:
        x0, y0 = self._normalised(self._drag_start)
        x1, y1 = self._normalised(point)
        box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        height, width = self._size
        colour = QColor(255, 210, 0) if self.tool in (Tool.REGION, Tool.RESAMPLE, Tool.FILL) else (
            QColor(80, 220, 120) if self._sign > 0 else QColor(240, 80, 80))
        self._rect_item.setPen(_cosmetic_pen(colour))
        self._rect_item.setRect(QRectF(box[0] * width, box[1] * height, (box[2] - box[0]) * width,
                                       (box[3] - box[1]) * height))
        self._rect_item.setVisible(not finish)
        flat = box[2] <= box[0] or box[3] <= box[1]
        if self.tool is Tool.REGION:
            if finish and not flat:  # a click keeps the region there was
                self.set_region(box)
                self.region_marked.emit(box)
        elif self.tool in (Tool.RESAMPLE, Tool.FILL):
            if finish and not flat:
                (self.resample_marked if self.tool is Tool.RESAMPLE else self.fill_marked).emit(box)
        else:
            self.rect_changed.emit(box, self._sign, finish)

    # ---- hover ---------------------------------------------------------------------------------
    def _mouse_moved(self, scene_pos: QPointF) -> None:
        point = self.view.mapSceneToView(scene_pos)
        height, width = self._size
        radius = self.brush_radius * height
        self._cursor.setRect(QRectF(point.x() - radius, point.y() - radius, 2 * radius, 2 * radius))
        self._cursor.setVisible(self.tool is Tool.BRUSH)
        px, py = int(np.floor(point.x())), int(np.floor(point.y()))
        inside = 0 <= px < width and 0 <= py < height
        self.hovered.emit((px, py) if inside else None)

    def leaveEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt naming)
        """The mouse gone, so are the brush outline and the readout of what was under it."""
        super().leaveEvent(event)
        self._cursor.hide()
        self.hovered.emit(None)


def _cosmetic_pen(colour: QColor, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(colour, 1.5, style)
    pen.setCosmetic(True)
    return pen
