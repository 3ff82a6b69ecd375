"""The window's controls in one place: the tools and their shortcuts, the toolbar's brush settings,
the menus, and the status bar's widgets.

``Controls`` builds them and keeps what only concerns them (the tool group, brush size keys, the
Help texts, the loading clock); the window connects the rest to the document, panels and canvas.
A new menu entry is a QAction made here and connected in ``MainWindow._connect``.
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QEvent, QObject, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (QAbstractSpinBox, QApplication, QDockWidget, QDoubleSpinBox, QFrame,
                               QLabel, QLineEdit, QMainWindow, QMenu, QMessageBox, QProgressBar,
                               QStatusBar, QToolBar, QWidget)
from superqt import QLabeledSlider

from ganinterface.engine.commands import CommandStack
from ganinterface.models import size_text
from ganinterface.ui.canvas import Tool
from ganinterface.ui.help_text import QUICK_START, SHORTCUTS
from ganinterface.ui.model_loading import LoadedModel

TOOLS = (  # tool, name, key, tooltip
    (Tool.PAN, "Pan", "V", "Pan and zoom the image (wheel zooms)"),
    (Tool.BRUSH, "Brush", "B", "Paint a feature edit: left adds, right subtracts"),
    (Tool.RECT, "Rectangle", "R", "Drag a rectangle edit: left adds, right subtracts"),
    (Tool.REGION, "Region", "M", "Mark the region used to rank channels"),
    (Tool.RESAMPLE, "Resample", "F", "Drag a rectangle to regenerate it, at the current layer, from "
     "another seed (a new fill each time)"),
    (Tool.FILL, "Fill", "G", "Drag a rectangle over something to remove: from the current layer on it "
     "takes this portrait's own features from beside it"),
)
BRUSH_STEP = 2  # image pixels per [ or ]
QUICK_START_HINT = ("New here? Help ▸ Quick start (F1) shows how to find and edit a feature in four "
                    "steps")


class Controls(QObject):
    """Every action, menu, toolbar widget and status-bar widget of ``window``."""

    tool_chosen = Signal(object)  # Tool
    recent_chosen = Signal(str)  # a path from File ▸ Open recent

    def __init__(self, window: QMainWindow, docks: list[QDockWidget], settings: QSettings) -> None:
        super().__init__(window)
        self.window = window
        self.settings = settings
        self._build_toolbar()
        self._build_menus(docks)
        self._build_status_bar()
        QApplication.instance().installEventFilter(self)  # for Space, wherever the focus is

    # ---- toolbar -------------------------------------------------------------------------------
    def _build_toolbar(self) -> None:
        bar = QToolBar("Tools")
        bar.setObjectName("toolbar-tools")
        self.window.addToolBar(bar)
        group = QActionGroup(self)
        self.tools: dict[Tool, QAction] = {}
        for tool, text, key, tip in TOOLS:
            action = QAction(text, self, checkable=True)
            action.setShortcut(QKeySequence(key))
            action.setToolTip(f"{tip} ({key})")
            action.triggered.connect(lambda _=False, t=tool: self.tool_chosen.emit(t))
            group.addAction(action)
            bar.addAction(action)
            self.tools[tool] = action
        self.tools[Tool.PAN].setChecked(True)
        bar.addSeparator()
        self.brush_size = QLabeledSlider(Qt.Orientation.Horizontal)
        self.brush_size.setRange(1, 64)
        self.brush_size.setValue(8)
        self.brush_size.setFixedWidth(150)
        self.brush_size.setToolTip("Brush diameter in image pixels ([ and ])")
        self.softness = _spin(0.0, 1.0, 0.1, 0.5, "Edge softness: 0 hard, 1 fully feathered")
        # 1 is near the built-in model's activations; 3 drew blots there
        self.strength = _spin(0.0, 100.0, 0.5, 1.0,
                              "Amount added to the selected channels inside the mask")
        for label, widget in (("Size", self.brush_size), ("Softness", self.softness),
                              ("Strength", self.strength)):
            bar.addWidget(QLabel(f" {label} "))
            bar.addWidget(widget)
        self.subtract = QAction("Subtract", self, checkable=True)
        self.subtract.setShortcut(QKeySequence("X"))
        self.subtract.setToolTip("Left button subtracts instead of adding (X)")
        bar.addAction(self.subtract)
        self.anchor = QAction("Anchor", self, checkable=True, checked=False)
        self.anchor.setToolTip("Anchor new edits to where their selected channels peak, so a "
                               "recipe follows the feature on other portraits (best drawn as the "
                               "first edit: the peak is measured on the image as shown)")
        bar.addAction(self.anchor)
        bar.addSeparator()
        self.compare = QAction("Without edits", self, checkable=True)
        self.compare.setToolTip("Show the image without any edits (or hold Space)")
        bar.addAction(self.compare)
        hint = QLabel(" (hold Space)")
        hint.setStyleSheet("color: palette(mid);")
        bar.addWidget(hint)

    def choose_tool(self, tool: Tool) -> None:
        self.tools[tool].setChecked(True)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt naming)
        """Space held anywhere in the window (but not typed into a field) checks Without edits.

        It sees every event of the application (thousands a second during a drag): anything
        but a key event leaves at the cheapest test (``event.type()`` builds a Python enum)."""
        if not isinstance(event, QKeyEvent) or event.key() != Qt.Key.Key_Space:
            return False
        kind = event.type()
        if (kind in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease) and not event.isAutoRepeat()
                and self.window.isActiveWindow() and not _typing_into(QApplication.focusWidget())):
            self.compare.setChecked(kind == QEvent.Type.KeyPress)
            return True
        return False

    def stop(self) -> None:
        """Before the window goes: no more keys watched, no more clock."""
        QApplication.instance().removeEventFilter(self)
        self.loading.end()

    # ---- menus ---------------------------------------------------------------------------------
    def _action(self, menu: QMenu, text: str, shortcut: Any = None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
        menu.addAction(action)
        return action

    def _build_menus(self, docks: list[QDockWidget]) -> None:
        bar, keys = self.window.menuBar(), QKeySequence.StandardKey
        file_menu = bar.addMenu("&File")
        self.open_model = self._action(file_menu, "Open model…", "Ctrl+Shift+O",
                                       "Load a generator checkpoint (.pkl, .pt, .safetensors)")
        self.open_scene = self._action(file_menu, "Open scene…", keys.Open)
        self.open_image = self._action(file_menu, "Open image…", "Ctrl+Shift+I",
                                       "Project a picture into the model: find the latent whose "
                                       "render matches it (dropping a picture does the same)")
        self.recent_menu = file_menu.addMenu("Open recent")
        self.save_scene = self._action(file_menu, "Save scene", keys.Save)
        self.save_scene_as = self._action(file_menu, "Save scene as…", keys.SaveAs)
        file_menu.addSeparator()
        self.export = self._action(file_menu, "Export…", "Ctrl+E",
                                   "Save the image, a strip, a PNG sequence, a GIF or an MP4")
        file_menu.addSeparator()
        self.quit = self._action(file_menu, "Quit", keys.Quit)

        edit_menu = bar.addMenu("&Edit")
        self.undo = self._action(edit_menu, "Undo", keys.Undo)
        self.redo = self._action(edit_menu, "Redo", "Ctrl+Shift+Z")
        edit_menu.addSeparator()
        self.delete_edit = self._action(edit_menu, "Delete selected edit", keys.Delete)
        self.clear_region = self._action(edit_menu, "Clear marked region", "Esc")
        self.next_seed = self._action(edit_menu, "Next seed", "PgDown")
        self.previous_seed = self._action(edit_menu, "Previous seed", "PgUp")
        for text, step, key in (("Larger brush", BRUSH_STEP, "]"), ("Smaller brush", -BRUSH_STEP, "[")):
            self._action(edit_menu, text, key).triggered.connect(
                lambda _=False, s=step: self.brush_size.setValue(self.brush_size.value() + s))

        view_menu = bar.addMenu("&View")
        self.fit = self._action(view_menu, "Fit image", "Ctrl+0")
        self.actual_pixels = self._action(view_menu, "Actual pixels (1:1)", "Ctrl+1")
        self.smooth = QAction("Smooth when enlarged", self, checkable=True, checked=True)
        view_menu.addAction(self.smooth)
        view_menu.addSeparator()
        for dock in docks:
            view_menu.addAction(dock.toggleViewAction())

        help_menu = bar.addMenu("&Help")
        for text, body, key in (("Quick start", QUICK_START, "F1"),
                                ("Keyboard shortcuts", SHORTCUTS, None)):
            self._action(help_menu, text, key).triggered.connect(
                lambda _=False, t=text, b=body: self._show_text(t, b))

    def _show_text(self, title: str, text: str) -> None:
        box = QMessageBox(QMessageBox.Icon.NoIcon, title, text, QMessageBox.StandardButton.Close,
                          self.window)
        box.setTextFormat(Qt.TextFormat.RichText)
        box.exec()

    def show_recent(self, paths: list[str]) -> None:
        self.recent_menu.clear()
        for path in paths:
            self.recent_menu.addAction(path).triggered.connect(
                lambda _=False, p=path: self.recent_chosen.emit(p))
        self.recent_menu.setEnabled(bool(paths))

    def show_history(self, stack: CommandStack) -> None:
        """Undo and Redo name what they would undo or redo, and are disabled when there is none."""
        self.undo.setEnabled(stack.can_undo())
        self.redo.setEnabled(stack.can_redo())
        self.undo.setText(f"Undo {stack.undo_label()}".strip())
        self.redo.setText(f"Redo {stack.redo_label()}".strip())

    # ---- status bar ----------------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        status = self.window.statusBar()
        self.model_label = QLabel("no model")
        self.render_label = QLabel("")
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(120)
        self.busy.hide()
        status.addPermanentWidget(self.busy)
        status.addPermanentWidget(self.render_label)
        status.addPermanentWidget(_separator())  # the render's words and the model's stay apart
        status.addPermanentWidget(self.model_label)
        self.loading = LoadingStatus(status, self.busy)

    def show_model(self, model: LoadedModel, device: str) -> None:
        """The model's name, size and device; its note (e.g. a fallback), or the first-run hint."""
        shape, warn = model.shape, "⚠ " if model.note else ""
        size = size_text(shape.width, shape.height)
        self.model_label.setText(f"{warn}{shape.name} · {size} · {device}")
        self.model_label.setToolTip(model.note or str(model.checkpoint or "built-in model"))
        self.model_label.setStyleSheet("color: #e0b040;" if model.note else "")
        status = self.window.statusBar()
        if model.note:
            status.showMessage(model.note, 15000)
        elif not self.settings.value("hinted_quick_start", False, type=bool):
            self.settings.setValue("hinted_quick_start", True)
            status.showMessage(QUICK_START_HINT, 20000)
        else:
            status.clearMessage()

    def show_render(self, result: Any, layers: tuple, purpose: str, stale: bool) -> None:
        """How long the render took, the layers it recomputed, whether it is a draft (the fast
        mode, during a drag) or exact, and what it shows if not the scene."""
        first = min(int(result.first_layer), len(layers))
        recomputed = (f"from layer {first} ({layers[first].name})" if 0 < first < len(layers)
                      else "all layers" if first == 0 else "from cache")
        shows = {"compare": "without edits (comparing)", "preview": "animation preview"}.get(purpose)
        precision = "draft" if result.draft else "exact"
        notes = [note for note in (shows, "catching up…" if stale else None) if note]
        self.render_label.setText(" · ".join(
            [precision, f"{result.seconds * 1000:.0f} ms, {recomputed}"] + notes))
        self.render_label.setStyleSheet("")

    def show_render_error(self, error: str) -> None:
        self.render_label.setText(f"Render failed: {error}")
        self.render_label.setStyleSheet("color: #e06060;")


class LoadingStatus(QObject):
    """"Loading NAME… N s" and a busy bar, from ``begin`` until ``end``: a clock while it lasts."""

    def __init__(self, status: QStatusBar, busy: QProgressBar) -> None:
        super().__init__(status)
        self.status = status
        self.busy = busy
        self._name, self._started = "", 0.0
        self.timer = QTimer(self)
        self.timer.setInterval(500)
        self.timer.timeout.connect(self._show)

    def begin(self, name: str) -> None:
        self._name, self._started = name, time.monotonic()
        self.busy.show()
        self._show()
        self.timer.start()

    def end(self) -> None:
        self.timer.stop()
        self.busy.hide()

    def _show(self) -> None:
        self.status.showMessage(f"Loading {self._name}… {time.monotonic() - self._started:.0f} s")


def _spin(low: float, high: float, step: float, value: float, tip: str) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(low, high)
    spin.setSingleStep(step)
    spin.setValue(value)
    spin.setToolTip(tip)
    return spin


def _separator() -> QFrame:
    line = QFrame()
    line.setFrameShape(QFrame.Shape.VLine)
    line.setFrameShadow(QFrame.Shadow.Sunken)
    return line


def _typing_into(widget: QWidget | None) -> bool:
    return isinstance(widget, (QLineEdit, QAbstractSpinBox))
