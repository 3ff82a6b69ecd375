"""Shared helpers for the window tests: a tiny real generator and a window that is always stopped."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from PySide6.QtCore import QPointF, QSettings, Qt
from PySide6.QtWidgets import QMessageBox

from ganinterface.engine.renderer import Renderer
from ganinterface.ui.canvas import Tool
from ganinterface.ui.main_window import MainWindow
from ganinterface.ui.model_loading import LoadedModel, random_fallback_generator, shape_of

_GENERATOR = None


def tiny_generator():
    """The random-weight fallback StyleGAN2 (64x32 portrait, 64 channels): fast and deterministic."""
    global _GENERATOR
    if _GENERATOR is None:
        _GENERATOR = random_fallback_generator()
    return _GENERATOR


def tiny_loader(path: str | None) -> LoadedModel:
    if path is not None:
        from ganinterface.ui.model_loading import load_model

        return load_model(path)
    generator = tiny_generator()
    return LoadedModel(Renderer(generator), shape_of(generator, "tiny"), None)


@contextlib.contextmanager
def open_window(qtbot, tmp_path, *, force_sync: bool = True,
                loader: Callable[[str | None], LoadedModel] = tiny_loader) -> Iterator[MainWindow]:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(loader=loader, settings=settings, force_sync=force_sync)
    window._ask.answer = QMessageBox.StandardButton.Discard  # no modal boxes in tests
    try:
        window.load_model_async(None)
        if not force_sync:
            qtbot.waitUntil(lambda: window.model is not None and window.last_result is not None,
                            timeout=10_000)
        yield window
    finally:
        window.shutdown()
        window.deleteLater()


def drag(window: MainWindow, tool: Tool, points: list[tuple[float, float]],
         button: Qt.MouseButton = Qt.MouseButton.LeftButton) -> None:
    """Drag over the canvas through the tool code path; points in image pixels."""
    window.set_tool(tool)
    for index, (x, y) in enumerate(points):
        window.canvas._drag(QPointF(x, y), button, index == 0, index == len(points) - 1)
