"""The window shows drafts (the fast mode) while a drag goes on and the exact render when it stops,
and its status bar says which one is on screen."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest

from ganinterface.engine import commands as cmd
from ganinterface.engine.renderer import Renderer
from ganinterface.ui.canvas import Tool
from ganinterface.ui.main_window import SETTLE_MS
from ganinterface.ui.model_loading import LoadedModel, shape_of
from ui_support import open_window, tiny_generator

LAYER = "b32.conv1"


def _drafting_loader(path: str | None) -> LoadedModel:
    """The tiny model with drafts on whatever this machine's CPU is (bfloat16)."""
    generator = tiny_generator()
    return LoadedModel(Renderer(generator, "cpu", fast=True), shape_of(generator, "tiny"), None)


def _exact(scene) -> np.ndarray:
    return Renderer(tiny_generator(), "cpu", fast=False).render(scene).image


def test_a_drag_shows_drafts_then_the_exact_render_when_it_stops(qtbot, tmp_path):
    with open_window(qtbot, tmp_path, loader=_drafting_loader) as window:
        window.features_panel.set_current_layer(LAYER)
        window.set_tool(Tool.BRUSH)
        status = window.controls.render_label
        points = [(6.0, 8.0), (8.0, 9.0), (10.0, 10.0)]
        QTest.mousePress(status, Qt.MouseButton.LeftButton)  # the button held through the drag
        for index, (x, y) in enumerate(points[:-1]):
            window.canvas._drag(QPointF(x, y), Qt.MouseButton.LeftButton, index == 0, False)
        assert window.last_result.draft and "draft" in status.text()
        assert not np.array_equal(window.last_result.image, _exact(window.stack.scene))

        QTest.mouseRelease(status, Qt.MouseButton.LeftButton)
        window.canvas._drag(QPointF(*points[-1]), Qt.MouseButton.LeftButton, False, True)
        assert not window.last_result.draft
        assert "exact" in status.text() and "draft" not in status.text()
        np.testing.assert_array_equal(window.last_result.image, _exact(window.stack.scene))


def test_a_pause_in_changes_shows_the_exact_render(qtbot, tmp_path):
    """A slider dragged, then held still: a draft, then exact once changes pause."""
    with open_window(qtbot, tmp_path, loader=_drafting_loader) as window:
        window.stack.push(cmd.set_fields("Truncation", merge_key="psi", truncation_psi=0.7))
        assert not window.last_result.draft  # no button held: not a drag
        QTest.mousePress(window.controls.render_label, Qt.MouseButton.LeftButton)
        window.stack.push(cmd.set_fields("Truncation", merge_key="psi", truncation_psi=0.6))
        assert window.last_result.draft and "draft" in window.controls.render_label.text()
        qtbot.waitUntil(lambda: not window.last_result.draft, timeout=SETTLE_MS * 10)
        QTest.mouseRelease(window.controls.render_label, Qt.MouseButton.LeftButton)
        assert "exact" in window.controls.render_label.text()
        np.testing.assert_array_equal(window.last_result.image, _exact(window.stack.scene))
