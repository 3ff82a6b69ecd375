"""The window's layout as a user sees it: nothing moves under the cursor, nothing stale stays on
screen, nothing is clipped.  Driven offscreen with real mouse events where the mouse matters."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from ganinterface.ui.canvas import Tool
from ganinterface.ui.elided_label import ElidedLabel
from ui_support import open_window


@pytest.fixture
def shown(qtbot, tmp_path):
    """The window at its first-start size and dock layout, on screen."""
    with open_window(qtbot, tmp_path) as window:
        window.show()
        qtbot.waitExposed(window)
        qtbot.wait(50)  # the first-start dock sizes are set once the window has its size
        yield window


def _settle() -> None:
    QApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
    QApplication.processEvents()


def _move_mouse(canvas, x: float, y: float) -> None:
    """A real mouse move over ``canvas`` to image pixel (x, y)."""
    point = canvas.mapFromScene(canvas.view.mapViewToScene(QPointF(x, y)))
    viewport = canvas.viewport()
    event = QMouseEvent(QEvent.Type.MouseMove, QPointF(point), QPointF(viewport.mapToGlobal(point)),
                        Qt.MouseButton.NoButton, Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, event)


def _geometry(widget) -> tuple:
    corner = widget.mapTo(widget.window(), QPoint(0, 0))
    return corner.x(), corner.y(), widget.width(), widget.height()


def test_the_pixel_readout_appearing_moves_nothing(shown):
    canvas = shown.canvas
    before = _geometry(canvas), _geometry(shown.features_panel)
    _move_mouse(canvas, 10.5, 20.5)  # the middle of pixel (10, 20)
    _settle()
    assert shown.readout.text().startswith("  pixel (10, 20)")
    shown.readout.setText(shown.readout.text() * 4)  # however long the readout gets
    _settle()
    assert (_geometry(canvas), _geometry(shown.features_panel)) == before



def test_an_elided_label_keeps_its_size_and_cuts_long_lines(qtbot):
    label = ElidedLabel(lines=2)
    qtbot.addWidget(label)
    label.resize(80, label.height())
    empty_height = label.height()
    label.setText("a line much too long for eighty pixels\nshort")
    assert label.height() == empty_height and label.sizeHint().width() == 0
    first, second = label.shown_lines()
    assert first.endswith("…") and second == "short" and label.is_elided()
    label.setText("fits\nfits")
    assert label.shown_lines() == ["fits", "fits"] and not label.is_elided()
