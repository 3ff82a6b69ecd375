"""The main window: binds widgets to the CommandStack (the document) and the render worker.

Data flow, one way round: a widget emits a Command -> ``CommandStack.push`` -> listeners update the
widgets and submit a render request -> the worker renders the newest request -> ``_on_rendered``
(GUI thread) paints the numpy image.  The window never does tensor maths.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QObject, QSettings, Qt, QTimer, Slot
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (QAbstractSpinBox, QApplication, QDockWidget, QDoubleSpinBox,
                               QFileDialog, QLabel, QLineEdit, QMainWindow, QMessageBox,
                               QProgressBar, QTabWidget, QToolBar, QVBoxLayout, QWidget)
from superqt import QLabeledSlider

from ganinterface.engine import commands as cmd
from ganinterface.engine.scene import (FeatureCopy, FeatureEdit, Mask, Recipe, Rect, Scene,
                                       SceneFormatError, Stroke)
from ganinterface.engine.scheduler import Outcome
from ganinterface.ui.animation_panel import AnimationPanel
from ganinterface.ui.canvas import ImageCanvas, Tool
from ganinterface.ui.channel_finding import ChannelFinder
from ganinterface.ui.directions_panel import DirectionsPanel
from ganinterface.ui.edits_panel import EditsPanel
from ganinterface.ui.features_panel import ChannelView, FeaturesPanel, palette_lut
from ganinterface.ui.help_text import QUICK_START, SHORTCUTS
from ganinterface.ui.latent_panel import LatentPanel, latent_from_array
from ganinterface.ui.messages import MessageBoxes
from ganinterface.ui.model_loading import LoadedModel, load_model, shipped_files
from ganinterface.ui.workers import BackgroundTask, RenderBridge, RenderRequest

SCENE_FILTER = "Scenes (*.json *.png);;All files (*)"
RECIPE_FILTER = "Recipes (*.json);;All files (*)"
MAX_RECENT = 8


# The Fill tool copies from FILL_SCALE times as far from the rectangle's centre: a ring around it,
# about as wide as the rectangle's half-size, where the surroundings of what is removed are.
FILL_SCALE = 1.8


class MainWindow(QMainWindow):
    """ganinterface's window.  ``loader(path | None) -> LoadedModel`` runs on a worker thread."""

    def __init__(self, loader: Callable[[str | None], LoadedModel] = load_model,
                 settings: QSettings | None = None, force_sync: bool = False) -> None:
        super().__init__()
        self.setWindowTitle("ganinterface")
        self.settings = settings if settings is not None else QSettings("ganinterface", "ganinterface")
        self.stack = cmd.CommandStack(Scene())
        self.model: LoadedModel | None = None
        self.last_result: Any = None
        self.scene_path: Path | None = None
        self.comparing = False
        self._painting_index: int | None = None
        self._model_hash: tuple[LoadedModel, str] | None = None
        self._stroke_anchor: Any = None
        self._shut_down = False
        self._stroke_serial = 0
        self._stroke_name = ""
        self._ask = MessageBoxes(self)

        self.bridge = RenderBridge(self, force_sync=force_sync)
        self.bridge.rendered.connect(self._on_rendered)
        self.loader_task = BackgroundTask(loader, "ganinterface-load", self, force_sync=force_sync)
        self.loader_task.finished.connect(self._on_model_loaded)
        self.channel_finder = ChannelFinder(self, force_sync=force_sync)
        self._loading = ("", 0.0)
        self._loading_timer = QTimer(self)
        self._loading_timer.setInterval(500)
        self._loading_timer.timeout.connect(self._show_loading)

        self.canvas = ImageCanvas()
        self.readout = QLabel("")
        central = QWidget()
        central_layout = QVBoxLayout(central)
        central_layout.setContentsMargins(0, 0, 0, 0)
        central_layout.addWidget(self.canvas, 1)
        central_layout.addWidget(self.readout)
        self.setCentralWidget(central)

        self.latent_panel = LatentPanel()
        self.features_panel = FeaturesPanel()
        self.edits_panel = EditsPanel()
        self.channel_view = ChannelView()
        self.directions_panel = DirectionsPanel()
        self.animation_panel = AnimationPanel()
        self._extra_tabs = QTabWidget()
        self._extra_tabs.addTab(self.directions_panel, "Directions")
        self._extra_tabs.addTab(self.animation_panel, "Animation")
        self._preview: Scene | None = None
        self.setAcceptDrops(True)
        self._build_docks()
        self._build_tools()
        self._build_menus()
        self._build_status_bar()
        self._connect()
        self._restore_settings()
        self.stack.subscribe(self._on_scene_changed)
        QApplication.instance().installEventFilter(self)
        self._on_scene_changed(self.stack.scene)

    # ---- construction ----------------------------------------------------------------------------
    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{title.lower().replace(' ', '-')}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        left, right = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
        self.latent_dock = self._dock("Latent", self.latent_panel, left)
        self.edits_dock = self._dock("Edit stack", self.edits_panel, left)
        self.extra_dock = self._dock("Directions, animation", self._extra_tabs, left)
        self.tabifyDockWidget(self.edits_dock, self.extra_dock)
        self.edits_dock.raise_()
        self.features_dock = self._dock("Feature maps", self.features_panel, right)
        self.channel_dock = self._dock("Channel", self.channel_view, right)
        self.tabifyDockWidget(self.features_dock, self.channel_dock)
        self.features_dock.raise_()

    def _default_dock_sizes(self) -> None:
        """First start: a narrow left column, a wide feature grid, the image in between."""
        self.resizeDocks([self.latent_dock, self.features_dock], [370, 470],
                         Qt.Orientation.Horizontal)
        self.resizeDocks([self.latent_dock, self.edits_dock], [230, 500], Qt.Orientation.Vertical)

    def _build_tools(self) -> None:
        bar = QToolBar("Tools")
        bar.setObjectName("toolbar-tools")
        self.addToolBar(bar)
        group = QActionGroup(self)
        self.tool_actions: dict[Tool, QAction] = {}
        for tool, text, key, tip in (
                (Tool.PAN, "Pan", "V", "Pan and zoom the image (wheel zooms)"),
                (Tool.BRUSH, "Brush", "B", "Paint a feature edit: left adds, right subtracts"),
                (Tool.RECT, "Rectangle", "R", "Drag a rectangle edit: left adds, right subtracts"),
                (Tool.REGION, "Region", "M", "Mark the region used to rank channels"),
                (Tool.RESAMPLE, "Resample", "F", "Drag a rectangle to regenerate it, at the current "
                 "layer, from another seed (a new fill each time)"),
                (Tool.FILL, "Fill", "G", "Drag a rectangle over something to remove: at the current "
                 "layer it takes this portrait's own features from around it")):
            action = QAction(text, self, checkable=True)
            action.setShortcut(QKeySequence(key))
            action.setToolTip(f"{tip} ({key})")
            action.triggered.connect(lambda _=False, t=tool: self.set_tool(t))
            group.addAction(action)
            bar.addAction(action)
            self.tool_actions[tool] = action
        self.tool_actions[Tool.PAN].setChecked(True)
        bar.addSeparator()
        self.brush_size = QLabeledSlider(Qt.Orientation.Horizontal)
        self.brush_size.setRange(1, 64)
        self.brush_size.setValue(8)
        self.brush_size.setFixedWidth(150)
        self.brush_size.setToolTip("Brush diameter in image pixels ([ and ])")
        self.softness = QDoubleSpinBox()
        self.softness.setRange(0.0, 1.0)
        self.softness.setSingleStep(0.1)
        self.softness.setValue(0.5)
        self.softness.setToolTip("Edge softness: 0 hard, 1 fully feathered")
        self.strength = QDoubleSpinBox()
        self.strength.setRange(0.0, 100.0)
        self.strength.setSingleStep(0.5)
        self.strength.setValue(1.0)  # near the built-in model's activations; 3 drew blots there
        self.strength.setToolTip("Amount added to the selected channels inside the mask")
        self.subtract_action = QAction("Subtract", self, checkable=True)
        self.subtract_action.setShortcut(QKeySequence("X"))
        self.subtract_action.setToolTip("Left button subtracts instead of adding (X)")
        for label, widget in (("Size", self.brush_size), ("Softness", self.softness),
                              ("Strength", self.strength)):
            bar.addWidget(QLabel(f" {label} "))
            bar.addWidget(widget)
        bar.addAction(self.subtract_action)
        self.anchor_action = QAction("Anchor", self, checkable=True, checked=False)
        self.anchor_action.setToolTip("Anchor new edits to where their selected channels peak, so "
                                      "a recipe follows the feature on other portraits (best "
                                      "drawn as the first edit: the peak is measured on the image "
                                      "as shown)")
        bar.addAction(self.anchor_action)
        bar.addSeparator()
        self.compare_action = QAction("Without edits", self, checkable=True)
        self.compare_action.setToolTip("Show the image without any edits (or hold Space)")
        self.compare_action.toggled.connect(self.set_comparing)
        bar.addAction(self.compare_action)
        compare = QLabel(" (hold Space)")
        compare.setStyleSheet("color: palette(mid);")
        bar.addWidget(compare)

    def _action(self, menu, text: str, slot: Callable, shortcut: Any = None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
        action.triggered.connect(lambda _=False: slot())
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._action(file_menu, "Open model…", self.open_model_dialog, "Ctrl+Shift+O",
                     "Load a generator checkpoint (.pkl, .pt, .safetensors)")
        self._action(file_menu, "Open scene…", self.open_scene_dialog, QKeySequence.StandardKey.Open)
        self.recent_menu = file_menu.addMenu("Open recent")
        self._action(file_menu, "Save scene", self.save_scene, QKeySequence.StandardKey.Save)
        self._action(file_menu, "Save scene as…", self.save_scene_as, QKeySequence.StandardKey.SaveAs)
        file_menu.addSeparator()
        self._action(file_menu, "Export…", self.open_export_dialog, "Ctrl+E",
                     "Save the image, a strip, a PNG sequence, a GIF or an MP4")
        file_menu.addSeparator()
        self._action(file_menu, "Quit", self.close, QKeySequence.StandardKey.Quit)

        edit_menu = bar.addMenu("&Edit")
        self.undo_action = self._action(edit_menu, "Undo", self.stack.undo, QKeySequence.StandardKey.Undo)
        self.redo_action = self._action(edit_menu, "Redo", self.stack.redo, "Ctrl+Shift+Z")
        edit_menu.addSeparator()
        self._action(edit_menu, "Delete selected edit", self.edits_panel.delete.click,
                     QKeySequence.StandardKey.Delete)
        self.clear_region_action = self._action(edit_menu, "Clear marked region", self.clear_region, "Esc")
        self._action(edit_menu, "Next seed", lambda: self.latent_panel.next_button.click(), "PgDown")
        self._action(edit_menu, "Previous seed", lambda: self.latent_panel.previous_button.click(), "PgUp")
        for text, step, key in (("Larger brush", 2, "]"), ("Smaller brush", -2, "[")):
            self._action(edit_menu, text,
                         lambda s=step: self.brush_size.setValue(self.brush_size.value() + s), key)

        view_menu = bar.addMenu("&View")
        self._action(view_menu, "Fit image", self.canvas.fit, "Ctrl+0")
        self._action(view_menu, "Actual pixels (1:1)", self.canvas.actual_size, "Ctrl+1")
        self.smooth_action = QAction("Smooth when enlarged", self, checkable=True, checked=True)
        self.smooth_action.toggled.connect(self.canvas.set_smooth)
        view_menu.addAction(self.smooth_action)
        view_menu.addSeparator()
        for dock in (self.latent_dock, self.edits_dock, self.extra_dock, self.features_dock,
                     self.channel_dock):
            view_menu.addAction(dock.toggleViewAction())

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "Quick start", lambda: self._show_text("Quick start", QUICK_START), "F1")
        self._action(help_menu, "Keyboard shortcuts", lambda: self._show_text("Keyboard shortcuts",
                                                                              SHORTCUTS))

    def _show_text(self, title: str, text: str) -> None:
        box = QMessageBox(QMessageBox.Icon.NoIcon, title, text, QMessageBox.StandardButton.Close, self)
        box.setTextFormat(Qt.TextFormat.RichText)
        box.exec()

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        self.model_label = QLabel("no model")
        self.render_label = QLabel("")
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(120)
        self.busy.hide()
        status.addPermanentWidget(self.busy)
        status.addPermanentWidget(self.render_label)
        status.addPermanentWidget(self.model_label)

    def _connect(self) -> None:
        for panel in (self.latent_panel, self.edits_panel, self.directions_panel):
            panel.command.connect(self.push)
            panel.drag_finished.connect(self.stack.close_merge)
        self.directions_panel.message.connect(lambda text: self.statusBar().showMessage(text, 6000))
        self.animation_panel.message.connect(lambda text: self.statusBar().showMessage(text, 6000))
        for panel in (self.directions_panel, self.animation_panel):
            panel.failed.connect(self._ask.error)
        self.animation_panel.preview_frame.connect(self._show_preview)
        self.animation_panel.preview_stopped.connect(lambda: self._show_preview(None))
        self.latent_panel.copy_requested.connect(self.copy_latent)
        self.latent_panel.paste_requested.connect(self.paste_latent)
        self.latent_panel.load_requested.connect(self.load_latent_dialog)
        self.latent_panel.save_requested.connect(self.save_latent_dialog)
        self.edits_panel.save_recipe_requested.connect(self.save_recipe_dialog)
        self.edits_panel.apply_recipe_requested.connect(self.apply_recipe_dialog)
        self.edits_panel.apply_to_seeds_requested.connect(self.apply_to_seeds_dialog)
        self.features_panel.layer_changed.connect(lambda _name: self.request_render())
        self.features_panel.rank_requested.connect(self.rank_channels)
        self.features_panel.propose_requested.connect(self.propose_edit)
        self.features_panel.channel_opened.connect(self.open_channel)
        self.features_panel.display_changed.connect(self._refresh_channel_view)
        self.features_panel.overlay.toggled.connect(lambda _on: self._refresh_channel_view())
        for canvas in (self.canvas, self.channel_view.canvas):
            canvas.stroke_changed.connect(self._stroke_changed)
            canvas.rect_changed.connect(self._rect_changed)
            canvas.region_marked.connect(self._region_marked)
            canvas.resample_marked.connect(self._resample_marked)
            canvas.fill_marked.connect(self._fill_marked)
        self.edits_panel.style_mix_requested.connect(self.add_style_mix)
        self.edits_panel.recipe_file_chosen.connect(self.apply_recipe)
        self.canvas.hovered.connect(self._hovered)
        self.brush_size.valueChanged.connect(self._brush_size_changed)

    # ---- document --------------------------------------------------------------------------------
    @Slot(object)
    def push(self, command: cmd.Command) -> None:
        self.stack.push(command)

    def _on_scene_changed(self, scene: Scene) -> None:
        if self._preview is not None:  # a change to the document ends the animation preview
            self.animation_panel.stop()
        self.comparing = False  # ... and comparing: show what was just changed
        self.compare_action.setChecked(False)
        shape = self.model.shape if self.model else None
        self.latent_panel.show_scene(scene, shape)
        self.edits_panel.show_scene(scene)
        self.directions_panel.show_scene(scene)
        self.animation_panel.show_scene(scene)
        self.undo_action.setEnabled(self.stack.can_undo())
        self.redo_action.setEnabled(self.stack.can_redo())
        self.undo_action.setText(f"Undo {self.stack.undo_label()}".strip())
        self.redo_action.setText(f"Redo {self.stack.redo_label()}".strip())
        name = self.scene_path.name if self.scene_path else "untitled"
        self.setWindowTitle(f"{name}[*] — ganinterface")
        self.setWindowModified(not self.stack.is_clean())
        self.request_render()

    def displayed_scene(self) -> Scene:
        scene = self._preview if self._preview is not None else self.stack.scene
        return scene.replace(edits=()) if self.comparing else scene

    def _show_preview(self, scene: Scene | None) -> None:
        self._preview = scene
        self.request_render()

    def request_render(self) -> None:
        if self.model is None or self._shut_down:
            return
        layer = self.features_panel.current_layer()
        purpose = ("compare" if self.comparing else
                   "preview" if self._preview is not None else "edit")
        self.bridge.submit(RenderRequest(self.model.renderer, self.displayed_scene(),
                                         (layer,) if layer else (), purpose))

    @Slot(object, object)
    def _on_rendered(self, request: RenderRequest, outcome: Outcome) -> None:
        if self.model is None or request.renderer is not self.model.renderer:
            return  # rendered by a model that has since been replaced
        result = outcome.value
        error = outcome.error or getattr(result, "error", None)
        if error:
            self.render_label.setText(f"Render failed: {error}")
            self.render_label.setStyleSheet("color: #e06060;")
            return
        self.render_label.setStyleSheet("")
        self.last_result = result
        self.canvas.set_image(result.image)
        layer = request.taps[0] if request.taps else ""
        if layer and layer in result.features:
            self.features_panel.show_features(np.asarray(result.features[layer]))
        layers = self.model.shape.layers
        first = min(int(result.first_layer), len(layers))
        recomputed = (f"from layer {first} ({layers[first].name})" if 0 < first < len(layers)
                      else "all layers" if first == 0 else "from cache")
        what = {"compare": "without edits (comparing)", "preview": "animation preview"}.get(
            request.purpose, "")
        if outcome.stale:
            what += " (catching up…)"
        self.render_label.setText(f"{result.seconds * 1000:.0f} ms, {recomputed} {what}".strip())

    # ---- models ----------------------------------------------------------------------------------
    def load_model_async(self, path: str | None) -> None:
        if self._shut_down:
            return
        self.busy.show()
        self._loading = (Path(path).name if path else "the built-in model", time.monotonic())
        self._show_loading()
        self._loading_timer.start()
        self.loader_task.start(path)

    def _show_loading(self) -> None:
        name, started = self._loading
        self.statusBar().showMessage(f"Loading {name}… {time.monotonic() - started:.0f} s")

    @Slot(object, object)
    def _on_model_loaded(self, path: str | None, outcome: Outcome) -> None:
        self.busy.setVisible(self.loader_task.busy())
        if not self.loader_task.busy():
            self._loading_timer.stop()
        if not outcome.ok:
            self.statusBar().showMessage("Could not load the model", 8000)
            self._ask.error("Could not load model", outcome.error.split(": ", 1)[-1]
                            if outcome.error.startswith(("CheckpointError", "FileNotFoundError"))
                            else outcome.error)
            if self.model is None and path is not None:
                self.load_model_async(None)  # nothing to fall back on yet: the built-in model
            return
        self.set_model(outcome.value)

    def set_model(self, model: LoadedModel) -> None:
        # Everything alive now (modules, widgets, the model) stays alive: take it out of the cyclic
        # garbage collector's sight, so a full collection no longer stalls the GUI for ~0.5 s.
        gc.freeze()
        self.model = model
        device = getattr(model.renderer, "device", "cpu")
        shape = model.shape
        self.model_label.setText(f"{shape.name} · {shape.height}×{shape.width} · {device}")
        self.model_label.setToolTip(model.note or str(model.checkpoint or "built-in model"))
        self.model_label.setStyleSheet("color: #e0b040;" if model.note else "")
        if model.note:
            self.model_label.setText("⚠ " + self.model_label.text())
            self.statusBar().showMessage(model.note, 15000)
        elif not self.settings.value("hinted_quick_start", False, type=bool):
            self.settings.setValue("hinted_quick_start", True)
            self.statusBar().showMessage("New here? Help ▸ Quick start (F1) shows how to find and "
                                         "edit a feature in four steps", 20000)
        else:
            self.statusBar().clearMessage()
        self.features_panel.set_layers(model.shape.layers)
        self.directions_panel.set_model(model)
        self.animation_panel.set_model(model)
        self.directions_panel.set_shipped(shipped_files(model, "directions"))
        self.edits_panel.set_shipped_recipes(shipped_files(model, "recipes"))
        self.edits_panel.set_model_shape(model.shape)
        scene = self.stack.scene
        if scene.checkpoint != model.checkpoint:  # another model: the old edits do not apply
            scene = scene.replace(checkpoint=model.checkpoint, w=None, edits=())
        class_index = fitting_class(scene.class_index, model.shape.c_dim)
        if scene is not self.stack.scene or class_index != scene.class_index:
            self.stack.reset(scene.replace(class_index=class_index))
        else:
            self._on_scene_changed(scene)

    # ---- painting ----------------------------------------------------------------------------------
    def set_tool(self, tool: Tool) -> None:
        self.tool_actions[tool].setChecked(True)
        self.canvas.set_tool(tool)
        self.channel_view.canvas.set_tool(tool)

    def _brush_size_changed(self, size: int) -> None:
        height = self.canvas.image_size()[0] or 1  # the brush is measured in image pixels
        self.canvas.brush_radius = self.channel_view.canvas.brush_radius = size / 2 / height

    def _edit_target(self) -> tuple[str, tuple[int, ...]] | None:
        layer = self.features_panel.current_layer()
        if not layer:
            return None
        channels = self.features_panel.selected_channels()
        if self._painting_index is None:  # a new edit: its anchor comes from the unedited features
            self._stroke_anchor = self._anchor_for(layer, channels)
        if not channels:
            channels = tuple(range(self.features_panel.channel_count()))
            self.statusBar().showMessage(f"No channels selected: the edit changes all {len(channels)} "
                                         f"channels of {layer}", 4000)
        return layer, channels

    def _unused_name(self, stem: str) -> str:
        """"brush 3": numbered so that two strokes never share a name (the edit stack shows
        consecutive edits with one name, a recipe's, as one row)."""
        taken = {getattr(edit, "name", "") for edit in self.stack.scene.edits}
        number = 1
        while f"{stem} {number}" in taken:
            number += 1
        return f"{stem} {number}"

    def _paint(self, shape: Any, sign: int, finished: bool, label: str) -> None:
        target = self._edit_target()
        if target is None:
            return
        if self.subtract_action.isChecked():
            sign = -sign
        layer, channels = target
        if self._painting_index is None:
            self._stroke_name = self._unused_name(label.lower())
        edit = FeatureEdit(layer, channels, Mask((shape,)), sign * float(self.strength.value()),
                           anchor=self._stroke_anchor, name=self._stroke_name)
        key = ("paint", self._stroke_serial)
        if self._painting_index is None:
            self.stack.push(cmd.add_edit(edit, label, merge_key=key))
            self._painting_index = len(self.stack.scene.edits) - 1
        else:
            self.stack.push(cmd.replace_edit(self._painting_index, edit, label, merge_key=key))
        if finished:
            self._end_paint()

    def _anchor_for(self, layer: str, channels: tuple[int, ...]) -> Any:
        """Anchor at the peak of the selected channels (none without a selection or when off)."""
        from ganinterface.engine.analysis import AnalysisError, anchor_from

        features = self.features_panel.features()
        if not (self.anchor_action.isChecked() and channels and features is not None):
            return None
        try:
            return anchor_from(features, channels, layer)
        except AnalysisError:
            return None

    def _resample_marked(self, box: tuple) -> None:
        import random

        from ganinterface.engine.scene import RegionResample

        layer = self.features_panel.current_layer()
        if layer and box[2] > box[0] and box[3] > box[1]:
            edit = RegionResample(layer, Mask((Rect(*box, softness=float(self.softness.value())),)),
                                  seed=random.randrange(100_000), name="resample")
            self.stack.push(cmd.add_edit(edit, "Resample region"))

    def _fill_marked(self, box: tuple) -> None:
        layer = self.features_panel.current_layer()
        if layer and box[2] > box[0] and box[3] > box[1]:
            centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
            edit = FeatureCopy(layer, Mask((Rect(*box, softness=float(self.softness.value())),)),
                               scale=FILL_SCALE, centre=centre, name=self._unused_name("fill"))
            self.stack.push(cmd.add_edit(edit, "Fill region"))

    def add_style_mix(self, seed: int, first: int) -> None:
        from ganinterface.engine.scene import StyleMix

        self.stack.push(cmd.add_edit(StyleMix(seed=seed, first=first, name=f"style of {seed}"),
                                     f"Style mix from seed {seed}"))

    def _stroke_changed(self, points: list, sign: int, finished: bool) -> None:
        height = self.canvas.image_size()[0] or 1
        stroke = Stroke(tuple(points), radius=round(self.brush_size.value() / 2 / height, 5),
                        softness=float(self.softness.value()))
        self._paint(stroke, sign, finished, "Brush stroke")

    def _rect_changed(self, box: tuple, sign: int, finished: bool) -> None:
        if box[2] - box[0] <= 0 or box[3] - box[1] <= 0:  # a click, or dragged back to a line
            if finished:
                self._end_paint()
            return
        self._paint(Rect(*box, softness=float(self.softness.value())), sign, finished, "Rectangle")

    def _end_paint(self) -> None:
        """Finish the current drag: its edit (if any) stays as one history entry."""
        self.stack.close_merge()
        self._painting_index = None
        self._stroke_serial += 1

    # ---- feature maps --------------------------------------------------------------------------------
    def _region_marked(self, box: tuple) -> None:
        for canvas in (self.canvas, self.channel_view.canvas):
            canvas.set_region(box)  # marked on either view: shown on both
        self.statusBar().showMessage("Region marked: press “Rank channels by region”", 4000)

    def clear_region(self) -> None:
        for canvas in (self.canvas, self.channel_view.canvas):
            canvas.set_region(None)

    def rank_channels(self) -> None:
        self.channel_finder.rank()

    def propose_edit(self) -> None:
        self.channel_finder.propose()

    def open_channel(self, channel: int) -> None:
        self.channel_dock.show()
        self.channel_dock.raise_()
        self.channel_view.channel = channel
        self._refresh_channel_view()

    def _refresh_channel_view(self) -> None:
        features, channel = self.features_panel.features(), self.channel_view.channel
        if features is None or channel is None or channel >= features.shape[0]:
            self.canvas.set_overlay(None)
            return
        palette = self.features_panel.palette_name()
        values = features[channel]
        bound = self.channel_view.show_channel(self.features_panel.current_layer(), channel, values,
                                               palette)
        if self.features_panel.overlay.isChecked():
            self.canvas.set_overlay(values, palette_lut(palette), bound)
        else:
            self.canvas.set_overlay(None)

    def _hovered(self, pixel: tuple[int, int] | None) -> None:
        result = self.last_result
        if pixel is None or result is None:
            self.readout.setText("")
            return
        x, y = pixel
        red, green, blue = (int(v) for v in result.image[y, x])
        raw = ", ".join(f"{float(v):+.3f}" for v in result.raw[:, y, x])
        self.readout.setText(f"  pixel ({x}, {y})   RGB {red} {green} {blue}   raw ({raw})")

    # ---- compare (A/B) -------------------------------------------------------------------------------
    def set_comparing(self, comparing: bool) -> None:
        if comparing != self.comparing:
            self.comparing = comparing
            self.compare_action.setChecked(comparing)
            self.request_render()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt naming)
        if (event.type() in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease)
                and event.key() == Qt.Key.Key_Space and not event.isAutoRepeat()
                and self.isActiveWindow() and not _typing_into(QApplication.focusWidget())):
            self.set_comparing(event.type() == QEvent.Type.KeyPress)
            return True
        return super().eventFilter(watched, event)

    # ---- latents ---------------------------------------------------------------------------------------
    def current_latent(self) -> np.ndarray | None:
        return None if self.last_result is None else np.asarray(self.last_result.ws, dtype=np.float32)

    def copy_latent(self) -> None:
        latent = self.current_latent()
        if latent is not None:
            QGuiApplication.clipboard().setText(json.dumps({"ganinterface.latent": latent.tolist()}))
            rows, columns = latent.shape
            self.statusBar().showMessage(f"Copied the W+ latent ({rows} × {columns})", 3000)

    def paste_latent(self) -> None:
        try:
            data = json.loads(QGuiApplication.clipboard().text())
            array = np.asarray(data["ganinterface.latent"], dtype=np.float32)
            self._use_latent(array, "clipboard", "Paste latent")
        except (ValueError, KeyError, TypeError) as error:
            self._ask.error("Paste latent", f"The clipboard holds no latent ({error})")

    def _use_latent(self, array: np.ndarray, what: str, label: str) -> None:
        if self.model is None:
            return
        latent = latent_from_array(array, self.model.shape, what)
        self.stack.push(cmd.set_fields(label, w=latent))

    def load_latent_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load latent", "", "NumPy (*.npy);;All files (*)")
        if path:
            self.load_latent(path)

    def load_latent(self, path: str) -> None:
        try:
            array = np.load(path, allow_pickle=False)
            self._use_latent(array, Path(path).name, f"Load latent {Path(path).name}")
        except (OSError, ValueError) as error:
            self._ask.error("Load latent", f"{Path(path).name}: {error}")

    def save_latent_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save latent", "latent.npy", "NumPy (*.npy)")
        if path:
            self.save_latent(path)

    def save_latent(self, path: str) -> bool:
        from ganinterface.atomic import atomic_write

        latent = self.current_latent()
        if latent is None:
            return False
        try:
            with atomic_write(path) as handle:
                np.save(handle, latent, allow_pickle=False)
        except OSError as error:
            self._ask.error("Save latent", f"{Path(path).name}: {error.strerror or error}")
            return False
        return True

    # ---- recipes ---------------------------------------------------------------------------------------
    def model_hash(self) -> str:
        """sha256 of the current weights (ties recipes to the model they were made for)."""
        from ganinterface.models.native import generator_hash

        if self.model is None:
            return ""
        if self._model_hash is None or self._model_hash[0] is not self.model:
            self._model_hash = (self.model, generator_hash(self.model.renderer.generator))
        return self._model_hash[1]

    def current_recipe(self, name: str = "") -> Recipe:
        return Recipe(edits=self.stack.scene.edits, name=name, model_hash=self.model_hash(),
                      provenance={"made_with": "ganinterface window", "seed": self.stack.scene.seed})

    def save_recipe_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save recipe", "recipe.json", RECIPE_FILTER)
        if path:
            self.save_recipe(path, Path(path).stem)

    def save_recipe(self, path: str, name: str = "") -> bool:
        from ganinterface.atomic import atomic_write_text

        try:
            atomic_write_text(path, self.current_recipe(name).to_json())
        except OSError as error:
            self._ask.error("Save recipe", f"{Path(path).name}: {error.strerror or error}")
            return False
        self.statusBar().showMessage(f"Saved recipe {Path(path).name}", 4000)
        return True

    def apply_recipe_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Apply recipe", "", RECIPE_FILTER)
        if path:
            self.apply_recipe(path)

    def apply_recipe(self, path: str) -> bool:
        try:
            recipe = Recipe.from_json(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, SceneFormatError) as error:
            self._ask.error("Apply recipe", f"{Path(path).name}: {error}")
            return False
        if recipe.model_hash and recipe.model_hash != self.model_hash():
            self._ask.error("Apply recipe", f"{Path(path).name}: made for another model "
                            f"({recipe.model_hash[:12]}…), not this one ({self.model_hash()[:12]}…)")
            return False
        self.stack.push(cmd.apply_recipe(recipe, f"Apply recipe {recipe.name or Path(path).stem}"))
        return True

    def apply_to_seeds_dialog(self) -> None:
        from ganinterface.ui.export_dialog import ApplyToSeedsDialog

        if self.model is not None:
            ApplyToSeedsDialog(self, self.model, self.stack.scene).exec()

    def open_export_dialog(self) -> None:
        from ganinterface.ui.export_dialog import ExportDialog

        if self.model is not None:
            ExportDialog(self, self.model, self.stack.scene, self.animation_frames).exec()

    def animation_frames(self) -> list[Scene]:
        return self.animation_panel.frames()

    # ---- session ---------------------------------------------------------------------------------------
    def open_model_dialog(self) -> None:
        if not self._ask.maybe_save():
            return
        path, _ = QFileDialog.getOpenFileName(
            self, "Open model", "", "Checkpoints (*.pkl *.pt *.pth *.safetensors);;All files (*)")
        if path:
            self.load_model_async(path)

    def open_scene_dialog(self) -> None:
        if not self._ask.maybe_save():
            return
        path, _ = QFileDialog.getOpenFileName(self, "Open scene", "", SCENE_FILTER)
        if path:
            self.open_scene(path)

    def open_scene(self, path: str | Path) -> bool:
        path = Path(path)
        try:
            if path.suffix.lower() == ".png":
                from ganinterface.export.images import read_png_scene

                scene = read_png_scene(path)
                if scene is None:
                    raise SceneFormatError("this PNG carries no ganinterface scene")
            else:
                scene = Scene.from_json(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, SceneFormatError) as error:
            self._ask.error("Open scene", f"{path.name}: {error}")
            return False
        self.scene_path = path if path.suffix.lower() == ".json" else None
        self._remember_recent(path)
        self.stack.reset(scene)
        if self.model is None or scene.checkpoint != self.model.checkpoint:
            self.load_model_async(scene.checkpoint)
        return True

    def save_scene(self) -> bool:
        if self.scene_path is None:
            return self.save_scene_as()
        return self.write_scene(self.scene_path)

    def save_scene_as(self) -> bool:
        path, _ = QFileDialog.getSaveFileName(self, "Save scene", "scene.json", "Scenes (*.json)")
        return bool(path) and self.write_scene(Path(path))

    def write_scene(self, path: Path) -> bool:
        from ganinterface.atomic import atomic_write_text

        try:
            atomic_write_text(path, self.stack.scene.to_json())
        except OSError as error:
            self._ask.error("Save scene", f"{path.name}: {error}")
            return False
        self.scene_path = Path(path)
        self._remember_recent(self.scene_path)
        self.stack.mark_clean()
        return True

    def _remember_recent(self, path: Path) -> None:
        recent = [str(path.resolve())] + [p for p in self._recent() if p != str(path.resolve())]
        self.settings.setValue("recent", recent[:MAX_RECENT])
        self._fill_recent_menu()

    def _recent(self) -> list[str]:
        value = self.settings.value("recent", [])
        return [value] if isinstance(value, str) else list(value or [])

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for path in self._recent():
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _=False, p=path: self._ask.maybe_save() and self.open_scene(p))
        self.recent_menu.setEnabled(bool(self._recent()))

    def _restore_settings(self) -> None:
        geometry, state = self.settings.value("geometry"), self.settings.value("window_state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 800)
        if state is not None:
            self.restoreState(state)
        else:
            QTimer.singleShot(0, self._default_dock_sizes)  # once the window has its size
        self._fill_recent_menu()

    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        """A dropped scene (.json, or a PNG we exported) opens; anything else loads as a model."""
        urls = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if not urls or not self._ask.maybe_save():
            return
        path = urls[0]
        if Path(path).suffix.lower() in (".json", ".png"):
            self.open_scene(path)
        else:
            self.load_model_async(path)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt naming)
        if not self._ask.maybe_save():
            event.ignore()
            return
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("window_state", self.saveState())
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Stop the worker threads (tests call this; closing the window does too)."""
        if self._shut_down:
            return
        self._shut_down = True
        self._loading_timer.stop()
        QApplication.instance().removeEventFilter(self)
        self.animation_panel.stop()
        self.directions_panel.shutdown()
        self.channel_finder.shutdown()
        self.bridge.shutdown()
        self.loader_task.shutdown()


def fitting_class(class_index: int | None, c_dim: int) -> int | None:
    """The scene's class if the model can use it; else none (unconditional) or class 0."""
    if c_dim == 0:
        return None
    return class_index if class_index is not None and 0 <= class_index < c_dim else 0


def _typing_into(widget: QWidget | None) -> bool:
    return isinstance(widget, (QLineEdit, QAbstractSpinBox))
