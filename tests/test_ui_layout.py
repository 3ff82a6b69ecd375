"""The window's layout as a user sees it: nothing moves under the cursor, nothing stale stays on
screen, nothing is clipped.  Driven offscreen with real mouse events where the mouse matters."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from ganinterface.ui.canvas import Tool
from ganinterface.ui.elided_label import ElidedLabel
from ui_support import drag, open_window


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

def test_the_readout_and_the_brush_outline_go_when_the_mouse_leaves_the_image(shown, qtbot):
    shown.set_tool(Tool.BRUSH)
    _move_mouse(shown.canvas, 10.5, 20.5)
    assert shown.readout.text() and shown.canvas._cursor.isVisible()
    QApplication.sendEvent(shown.canvas, QEvent(QEvent.Type.Leave))
    assert shown.readout.text() == "" and not shown.canvas._cursor.isVisible()
    qtbot.wait(30)  # pyqtgraph drops mouse moves closer together than its rate limit
    _move_mouse(shown.canvas, 5.5, 5.5)  # back again: both return
    assert shown.readout.text() and shown.canvas._cursor.isVisible()


def test_the_channel_readout_goes_when_the_mouse_leaves_the_channel(shown):
    shown.feature_views.open_channel(3)
    shown.channel_dock.raise_()
    _settle()
    view = shown.channel_view
    _move_mouse(view.canvas, 2.5, 4.5)
    assert view.readout.text().startswith("channel 3 at (2, 4)")
    QApplication.sendEvent(view.canvas, QEvent(QEvent.Type.Leave))
    assert view.readout.text() == ""


def test_the_disabled_strength_field_keeps_no_value_of_the_edit_before(shown, tmp_path):
    vector = np.random.RandomState(1).randn(shown.model.shape.w_dim).astype(np.float32)
    np.save(tmp_path / "smile.npy", vector)
    assert shown.directions_panel.load(str(tmp_path / "smile.npy"))
    row = shown.directions_panel._rows[0]
    row.amount.setValue(1.59)
    row.amount.sliderReleased.emit()
    strength = shown.edits_panel.amount
    assert strength.isEnabled() and strength.text() == "1.59"
    while shown.stack.can_undo():
        shown.stack.undo()
    assert not strength.isEnabled() and strength.text() == ""


def test_a_second_direction_leaves_two_rows_in_sight_before_the_old_ones_are_deleted(shown, tmp_path):
    from ganinterface.ui.directions_panel import DirectionRow

    panel = shown.directions_panel
    shown.extra_dock.raise_()
    shown._extra_tabs.setCurrentWidget(panel)
    for name in ("smile", "frown"):
        np.save(tmp_path / f"{name}.npy", np.ones(shown.model.shape.w_dim, np.float32))
        assert panel.load(str(tmp_path / f"{name}.npy"))
    _settle()  # events processed, but not the deferred delete of the rows made for the first one
    in_sight = [row for row in panel.findChildren(DirectionRow) if row.isVisible()]
    assert len(in_sight) == 2 and {row.name.text() for row in in_sight} == {"smile", "frown"}
    while shown.stack.can_undo():
        shown.stack.undo()


def test_the_layer_list_writes_sizes_width_first(shown):
    layers = shown.features_panel.layers
    rows = {layers.topLevelItem(row).text(0): layers.topLevelItem(row).text(2)
            for row in range(layers.topLevelItemCount())}
    assert rows["b32.conv1"] == "16 × 32 px"  # the tiny portrait model's maps are twice as high


def test_the_built_in_menu_buttons_show_their_whole_text_and_arrow(shown):
    from PySide6.QtWidgets import QStyle

    shown.extra_dock.raise_()
    _settle()
    for button in (shown.edits_panel.shipped, shown.directions_panel.shipped):
        style = button.style()
        arrow = style.pixelMetric(QStyle.PixelMetric.PM_MenuButtonIndicator)
        margin = style.pixelMetric(QStyle.PixelMetric.PM_ButtonMargin)
        text = button.fontMetrics().horizontalAdvance(button.text())
        assert button.width() >= margin + text + arrow + margin, button.text()


def test_the_rank_table_shows_the_top_eight_whole_and_no_horizontal_scrollbar(shown):
    from ganinterface.ui.features_panel import TOP_CHANNELS

    drag(shown, Tool.REGION, [(4.0, 30.0), (28.0, 50.0)])
    shown.channel_finder.rank()
    _settle()
    table = shown.features_panel.ranking
    assert table.rowCount() > TOP_CHANNELS == shown.features_panel.top_count.value() == 8
    last = TOP_CHANNELS - 1
    assert table.rowViewportPosition(last) + table.rowHeight(last) <= table.viewport().height()
    assert not table.horizontalScrollBar().isVisible()
    columns = sum(table.columnWidth(column) for column in range(table.columnCount()))
    assert columns == table.viewport().width()  # the columns share the width, none cut off


def test_the_channel_title_is_two_short_lines_with_the_size_width_first(shown):
    shown.features_panel.set_current_layer("b32.conv1")
    shown.feature_views.open_channel(3)
    title = shown.channel_view.title
    first, second = title.text().split("\n")
    assert first == "b32.conv1 · channel 3 · 16 × 32 px"
    assert second.startswith("min ") and "full colour ±" in second
    assert title.height() == 2 * title.fontMetrics().lineSpacing()


def test_the_status_bar_keeps_the_render_note_apart_from_the_model(shown):
    shown.set_comparing(True)
    render, model = shown.controls.render_label, shown.controls.model_label
    assert render.text().endswith(" ms, from cache · without edits (comparing)")
    labels = [widget for widget in shown.statusBar().children() if widget.isWidgetType()
              and widget.isVisible()]
    between = [w for w in labels if render.x() + render.width() <= w.x() < model.x()]
    assert between, "a separator stands between the render note and the model"


def test_ranking_on_this_portrait_replaces_the_hint_to_rank(shown):
    drag(shown, Tool.REGION, [(4.0, 30.0), (28.0, 50.0)])
    assert "Rank channels by region" in shown.statusBar().currentMessage()
    shown.features_panel.rank_button.click()
    assert shown.statusBar().currentMessage() == "Ranked the channels of b16.conv1"
