"""The whole picture with the crop frame on it: drag inside the frame to move it, drag a corner or
turn the mouse wheel to resize it, click outside to centre it there; arrow keys move it and + / -
resize it.  The frame itself (``engine.crop_frame.CropFrame``) does the geometry; this widget only
maps between its own pixels and the picture's."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (QColor, QImage, QKeyEvent, QMouseEvent, QPainter, QPainterPath, QPen,
                           QWheelEvent)
from PySide6.QtWidgets import QSizePolicy, QWidget

from ganinterface.engine.crop_frame import CropFrame

VIEW_SIDE = 384  # the picture is shown to fit a square of this many pixels
HANDLE = 10  # pixels around a corner that grab it
WHEEL_STEP = 1.1  # each notch away from the user makes the frame this much smaller
KEY_STEP = 0.01  # an arrow key moves the frame by this fraction of the picture
CORNER_CURSORS = {"top-left": Qt.CursorShape.SizeFDiagCursor, "bottom-right": Qt.CursorShape.SizeFDiagCursor,
                  "top-right": Qt.CursorShape.SizeBDiagCursor, "bottom-left": Qt.CursorShape.SizeBDiagCursor}


class CropView(QWidget):
    """Shows ``picture`` (h, w, 3) uint8 at a fixed size and lets the user place ``frame``."""

    changed = Signal()

    def __init__(self, picture: np.ndarray, frame: CropFrame, parent: QWidget | None = None):
        super().__init__(parent)
        height, width = picture.shape[:2]
        pixels = np.ascontiguousarray(picture)
        self._image = QImage(pixels.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()
        self.frame = frame
        self._anchor: tuple[float, float] | None = None  # the corner that stays while resizing
        self._last: tuple[float, float] | None = None  # the picture point a move started from
        scale = VIEW_SIDE / max(width, height)
        self.setFixedSize(max(1, round(width * scale)), max(1, round(height * scale)))
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setToolTip("Drag the frame to move it, drag a corner or turn the wheel to resize it")

    # ---- between the widget's pixels and the picture's ---------------------------------------
    def _scale(self) -> tuple[float, float]:
        return self.width() / self.frame.picture_width, self.height() / self.frame.picture_height

    def to_picture(self, position: QPointF) -> tuple[float, float]:
        sx, sy = self._scale()
        return position.x() / sx, position.y() / sy

    def frame_rect(self) -> QRectF:
        """The frame in the widget's pixels."""
        sx, sy = self._scale()
        return QRectF(self.frame.left * sx, self.frame.top * sy, self.frame.width * sx, self.frame.height * sy)

    def _corner_at(self, position: QPointF) -> str | None:
        sx, sy = self._scale()
        for name, (x, y) in self.frame.corners().items():
            if abs(x * sx - position.x()) <= HANDLE and abs(y * sy - position.y()) <= HANDLE:
                return name
        return None

    def set_frame(self, frame: CropFrame) -> None:
        if frame != self.frame:
            self.frame = frame
            self.update()
            self.changed.emit()

    # ---- events ------------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        position = event.position()
        point = self.to_picture(position)
        corner = self._corner_at(position)
        if corner is not None:
            self._anchor = self.frame.opposite(corner)
        elif not self.frame.contains(point):
            self.set_frame(self.frame.centred_on(point))
            self._last = point
        else:
            self._last = point

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        point = self.to_picture(event.position())
        if self._anchor is not None:
            self.set_frame(self.frame.resized(self._anchor, point))
        elif self._last is not None:
            self.set_frame(self.frame.moved(point[0] - self._last[0], point[1] - self._last[1]))
            self._last = point
        else:
            self._show_cursor(event.position())

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._anchor = self._last = None

    def wheelEvent(self, event: QWheelEvent) -> None:
        notches = event.angleDelta().y() / 120
        if notches:
            self.set_frame(self.frame.scaled(WHEEL_STEP ** -notches, self.to_picture(event.position())))
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        step_x = self.frame.picture_width * KEY_STEP
        step_y = self.frame.picture_height * KEY_STEP
        moves = {Qt.Key.Key_Left: (-step_x, 0), Qt.Key.Key_Right: (step_x, 0),
                 Qt.Key.Key_Up: (0, -step_y), Qt.Key.Key_Down: (0, step_y)}
        if event.key() in moves:
            self.set_frame(self.frame.moved(*moves[event.key()]))
        elif event.key() in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.set_frame(self.frame.scaled(WHEEL_STEP))
        elif event.key() == Qt.Key.Key_Minus:
            self.set_frame(self.frame.scaled(1 / WHEEL_STEP))
        else:
            super().keyPressEvent(event)  # Enter goes on to the dialog's Project button

    def _show_cursor(self, position: QPointF) -> None:
        corner = self._corner_at(position)
        if corner is not None:
            self.setCursor(CORNER_CURSORS[corner])
        elif self.frame.contains(self.to_picture(position)):
            self.setCursor(Qt.CursorShape.SizeAllCursor)
        else:
            self.unsetCursor()

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawImage(QRectF(self.rect()), self._image)
        frame = self.frame_rect()
        outside = QPainterPath()
        outside.addRect(QRectF(self.rect()))
        inside = QPainterPath()
        inside.addRect(frame)
        painter.fillPath(outside.subtracted(inside), QColor(0, 0, 0, 140))
        painter.setPen(QPen(QColor(255, 255, 255), 2))
        painter.drawRect(frame)
        painter.setBrush(QColor(255, 255, 255))
        for corner in (frame.topLeft(), frame.topRight(), frame.bottomLeft(), frame.bottomRight()):
            painter.drawRect(QRectF(corner.x() - HANDLE / 2, corner.y() - HANDLE / 2, HANDLE, HANDLE))
        painter.end()
