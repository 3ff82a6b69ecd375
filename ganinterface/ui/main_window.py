"""The main window: builds the panels and docks, and connects them to the document, the controls,
the gestures and the render worker.

Data flow, one way round: a widget emits a Command -> ``CommandStack.push`` -> listeners update the
widgets and submit a render request -> the worker renders the newest request -> ``_on_rendered``
(GUI thread) paints the numpy image.  The window never does tensor maths, reads no file and builds
no edit: ``controls`` holds the actions, menus and status bar, ``documents`` the files and the
title, ``painter`` (engine.gestures) turns drags into edits.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer, Slot
from PySide6.QtGui import QCloseEvent, QGuiApplication
from PySide6.QtWidgets import (QDockWidget, QMainWindow, QMessageBox, QTabWidget, QVBoxLayout,
                               QWidget)

from ganinterface.engine import commands as cmd
from ganinterface.engine.device import serial_torch_on_this_thread
from ganinterface.engine.gestures import PaintSettings, Painter, brush_radius
from ganinterface.engine.scene import Scene
from ganinterface.engine.scheduler import Outcome, RenderRequest
from ganinterface.export.userfiles import Session
from ganinterface.ui.animation_panel import AnimationPanel
from ganinterface.ui.canvas import ImageCanvas, Tool
from ganinterface.ui.channel_finding import ChannelFinder
from ganinterface.ui.controls import Controls
from ganinterface.ui.directions_panel import DirectionsPanel
from ganinterface.ui.documents import Autosave, Documents
from ganinterface.ui.edits_panel import EditsPanel
from ganinterface.ui.elided_label import ElidedLabel
from ganinterface.ui.feature_views import FeatureViews
from ganinterface.ui.features_panel import ChannelView, FeaturesPanel
from ganinterface.ui.latent_panel import LatentPanel
from ganinterface.ui.messages import MessageBoxes
from ganinterface.ui.model_loading import LoadedModel, load_model, on_cpu, shipped_files
from ganinterface.ui.workers import BackgroundTask, RenderBridge


SETTLE_MS = 300  # changes paused this long: the drag has stopped, show the exact render


class MainWindow(QMainWindow):
    """ganinterface's window.  ``loader(path | None) -> LoadedModel`` runs on a worker thread."""

    def __init__(self, loader: Callable[[str | None], LoadedModel] = load_model,
                 settings: QSettings | None = None, force_sync: bool = False) -> None:
        super().__init__()
        self.settings = settings if settings is not None else QSettings("ganinterface", "ganinterface")
        self.stack = cmd.CommandStack(Scene())
        self.model: LoadedModel | None = None
        self.last_result: Any = None
        self.comparing = False
        self._preview: Scene | None = None  # an animation frame shown instead of the document
        self._shut_down = False
        self._ask = MessageBoxes(self)
        self.painter = Painter(self.stack, lambda text: self.statusBar().showMessage(text, 4000))
        self.documents = Documents(self, self.stack, self.settings, self._ask, self.current_latent,
                                   force_sync=force_sync)
        self._restored_keyframes: tuple | None = None  # a restored session's, until its model loads
        self.autosave = Autosave(self, self._session, self._ask,
                                 lambda text: self.statusBar().showMessage(text, 8000))
        self.bridge = RenderBridge(self, force_sync=force_sync)
        self._gui_torch_threads: int | None = None  # before serial_torch_on_this_thread
        self.loader_task = BackgroundTask(loader, "ganinterface-load", self, force_sync=force_sync)
        self.cpu_task = BackgroundTask(on_cpu, "ganinterface-to-cpu", self, force_sync=force_sync)
        self._gpu_trouble = ""  # what sent the model to the CPU, shown once it renders there
        # While a drag goes on the renderer draws drafts (its fast mode, or a core left to this
        # thread); when the drag ends, or changes pause for SETTLE_MS, the exact render replaces
        # the draft on screen.
        self._settle = QTimer(self, singleShot=True, interval=SETTLE_MS)
        self._settle.timeout.connect(self._show_exact)
        self.channel_finder = ChannelFinder(self, force_sync=force_sync)

        self.canvas = ImageCanvas()
        self.readout = ElidedLabel()  # its space is kept: nothing moves when it fills
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
        self._build_docks()
        self.feature_views = FeatureViews(self.features_panel, self.channel_view, self.canvas,
                                          self.channel_dock, self.statusBar())
        self.controls = Controls(self, [self.latent_dock, self.edits_dock, self.extra_dock,
                                        self.features_dock, self.channel_dock], self.settings)
        self.setAcceptDrops(True)
        self._connect()
        self._restore_settings()
        self.stack.subscribe(self._on_scene_changed)
        self.stack.subscribe(self.autosave.schedule)
        self.animation_panel.keyframes_changed.connect(self.autosave.schedule)
        self.animation_panel.picture_chosen.connect(self.project_keyframe)
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
        self.controls.show_recent(self.documents.recent())

    def _connect(self) -> None:
        controls, documents, status = self.controls, self.documents, self.statusBar()
        self.bridge.rendered.connect(self._on_rendered)
        self.loader_task.finished.connect(self._on_model_loaded)
        self.cpu_task.finished.connect(self._on_moved_to_cpu)
        for action, slot in (
                (controls.open_model, documents.open_model_dialog),
                (controls.open_scene, documents.open_scene_dialog),
                (controls.open_image, documents.open_image_dialog),
                (controls.save_scene, documents.save_scene),
                (controls.save_scene_as, documents.save_scene_as),
                (controls.export, self.open_export_dialog), (controls.quit, self.close),
                (controls.undo, self.stack.undo), (controls.redo, self.stack.redo),
                (controls.delete_edit, self.edits_panel.delete.click),
                (controls.clear_region, self.feature_views.clear_region),
                (controls.next_seed, self.latent_panel.next_button.click),
                (controls.previous_seed, self.latent_panel.previous_button.click),
                (controls.fit, self.canvas.fit), (controls.actual_pixels, self.canvas.actual_size)):
            action.triggered.connect(lambda _=False, do=slot: do())
        controls.smooth.toggled.connect(self.canvas.set_smooth)
        controls.compare.toggled.connect(self.set_comparing)
        controls.tool_chosen.connect(self.set_tool)
        controls.brush_size.valueChanged.connect(self._brush_size_changed)
        controls.recent_chosen.connect(documents.open_recent)
        documents.recent_changed.connect(controls.show_recent)
        documents.model_requested.connect(self.load_model_async)

        for panel in (self.latent_panel, self.edits_panel, self.directions_panel):
            panel.command.connect(self.stack.push)
            panel.drag_finished.connect(self.stack.close_merge)
            panel.drag_finished.connect(self._show_exact)
        for panel in (self.directions_panel, self.animation_panel):
            panel.message.connect(lambda text: status.showMessage(text, 6000))
            panel.failed.connect(self._ask.error)
        self.animation_panel.preview_frame.connect(self._show_preview)
        self.animation_panel.preview_stopped.connect(lambda: self._show_preview(None))
        self.latent_panel.copy_requested.connect(documents.copy_latent)
        self.latent_panel.paste_requested.connect(documents.paste_latent)
        self.latent_panel.load_requested.connect(documents.load_latent_dialog)
        self.latent_panel.save_requested.connect(documents.save_latent_dialog)
        self.latent_panel.sample_requested.connect(documents.sample_like_dialog)
        self.edits_panel.save_recipe_requested.connect(documents.save_recipe_dialog)
        self.edits_panel.apply_recipe_requested.connect(documents.apply_recipe_dialog)
        self.edits_panel.recipe_file_chosen.connect(documents.apply_recipe)
        self.edits_panel.apply_to_seeds_requested.connect(self.apply_to_seeds_dialog)
        self.edits_panel.style_mix_requested.connect(self.painter.style_mix)
        self.edits_panel.style_mix_file_requested.connect(self.documents.style_mix_from_latent_dialog)
        self.edits_panel.fill_file_requested.connect(self.documents.fill_from_latent_dialog)
        self.features_panel.layer_changed.connect(lambda _name: self.request_render())
        self.features_panel.rank_requested.connect(self.channel_finder.rank)
        self.features_panel.propose_requested.connect(self.channel_finder.propose)
        self.features_panel.channel_opened.connect(self.feature_views.open_channel)
        self.features_panel.display_changed.connect(self.feature_views.refresh)
        self.features_panel.overlay.toggled.connect(lambda _on: self.feature_views.refresh())
        for canvas in (self.canvas, self.channel_view.canvas):
            canvas.stroke_changed.connect(self._stroke_changed)
            canvas.rect_changed.connect(self._rect_changed)
            canvas.resample_marked.connect(lambda box: self.painter.resample(box, self.paint_settings()))
            canvas.fill_marked.connect(self._fill)
            canvas.region_marked.connect(self.feature_views.mark_region)
        self.canvas.hovered.connect(self._hovered)

    # ---- the document and its image ----------------------------------------------------------------
    def _on_scene_changed(self, scene: Scene) -> None:
        if self._preview is not None:  # a change to the document ends the animation preview
            self.animation_panel.stop()
        self.comparing = False  # ... and comparing: show what was just changed
        self.controls.compare.setChecked(False)
        shape = self.model.shape if self.model else None
        self.latent_panel.show_scene(scene, shape)
        self.edits_panel.show_scene(scene)
        self.directions_panel.show_scene(scene)
        self.animation_panel.show_scene(scene)
        self.controls.show_history(self.stack)
        self._show_fill_outline(scene)
        self.request_render()

    def _fill(self, box: tuple) -> None:
        self.painter.fill(box, self.paint_settings())
        self._show_fill_outline(self.stack.scene)

    def _show_fill_outline(self, scene: Scene) -> None:
        """Outline the last Fill while its edits are in the scene (undo or delete removes it)."""
        fill = self.painter.last_fill
        present = fill is not None and any(edit.name == fill[0] for edit in scene.edits)
        for canvas in (self.canvas, self.channel_view.canvas):
            canvas.set_filled(fill[1:] if present else None)

    def displayed_scene(self) -> Scene:
        scene = self._preview if self._preview is not None else self.stack.scene
        return scene.replace(edits=()) if self.comparing else scene

    def _show_preview(self, scene: Scene | None) -> None:
        self._preview = scene
        self.request_render()

    def request_render(self, exact: bool = False) -> None:
        """Render what is displayed: a draft while a drag is in progress (a change merged into the
        last one while a mouse button is held: a stroke, a slider), unless ``exact``."""
        if self.model is None or self._shut_down:
            return
        layer = self.features_panel.current_layer()
        purpose = ("compare" if self.comparing else
                   "preview" if self._preview is not None else "edit")
        dragging = self.stack.merging and QGuiApplication.mouseButtons() != Qt.MouseButton.NoButton
        draft = not exact and purpose == "edit" and dragging
        self.bridge.submit(RenderRequest(self.model.renderer, self.displayed_scene(),
                                         (layer,) if layer else (), purpose, draft))

    def _show_exact(self) -> None:
        """The drag ended or paused: replace the draft on screen with the exact render."""
        if self.last_result is not None and self.last_result.draft:
            self.request_render(exact=True)

    @Slot(object, object)
    def _on_rendered(self, request: RenderRequest, outcome: Outcome) -> None:
        if self.model is None or request.renderer is not self.model.renderer:
            return  # rendered by a model that has since been replaced
        result = outcome.value
        error = outcome.error or getattr(result, "error", None)
        if error:
            self.controls.show_render_error(error)
            if getattr(result, "trouble", None):
                self._leave_the_gpu(result.trouble)
            return
        self.last_result = result
        self.canvas.set_image(result.image)
        layer = request.taps[0] if request.taps else ""
        if layer and layer in result.features:
            self.features_panel.show_features(np.asarray(result.features[layer]))
        self.controls.show_render(result, self.model.shape.layers, request.purpose, outcome.stale)
        if result.draft:
            self._settle.start()

    def project_keyframe(self, path: str) -> None:
        """Project the picture at ``path`` and add what is kept as the animation's next keyframe;
        the current scene stays as it is."""
        self.documents.project_picture(
            path, use=lambda found, name: self.animation_panel.add_projection(found.scene_fields(), name),
            keep=("Add keyframe", "Add the latent found so far as the animation's next keyframe"))

    def current_latent(self) -> np.ndarray | None:
        return None if self.last_result is None else np.asarray(self.last_result.ws, dtype=np.float32)

    # ---- models ----------------------------------------------------------------------------------
    def load_model_async(self, path: str | None) -> None:
        if self._shut_down:
            return
        self.controls.loading.begin(Path(path).name if path else "the built-in model")
        self.loader_task.start(path)

    @Slot(object, object)
    def _on_model_loaded(self, path: str | None, outcome: Outcome) -> None:
        if self.loader_task.busy() or self._shut_down:
            return  # another model was asked for meanwhile (only its outcome counts), or closing
        self.controls.loading.end()
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
        if not self.bridge.executor.force_sync and self._gui_torch_threads is None:
            self._gui_torch_threads = serial_torch_on_this_thread()  # renders run on workers
        self.model = model
        self.controls.show_model(model, getattr(model.renderer, "device", "cpu"))
        self.features_panel.set_layers(model.shape.layers)
        self.directions_panel.set_model(model)
        self.animation_panel.set_model(model)
        if self._restored_keyframes is not None:
            self.animation_panel.set_keyframes(self._restored_keyframes)
            self._restored_keyframes = None
        self.directions_panel.set_shipped(shipped_files(model, "directions"))
        self.edits_panel.set_shipped_recipes(shipped_files(model, "recipes"))
        self.edits_panel.set_model_shape(model.shape)
        if not self.documents.adopt(model):
            self._on_scene_changed(self.stack.scene)  # the same scene, shown for this model

    def _leave_the_gpu(self, trouble: str) -> None:
        """The GPU ran out of memory (even with the caches freed) or failed: render on the CPU."""
        if self.model.renderer.device.type == "cpu" or self.cpu_task.busy():
            return  # nowhere to go, or on the way there
        self._gpu_trouble = f"GPU {trouble}: rendering on the CPU"
        self.statusBar().showMessage(f"GPU {trouble}: moving the model to the CPU…")
        self.cpu_task.start(self.model)

    @Slot(object, object)
    def _on_moved_to_cpu(self, model: LoadedModel, outcome: Outcome) -> None:
        if model is not self.model:
            return  # another model was loaded meanwhile
        if not outcome.ok:
            self.statusBar().showMessage(f"Could not move the model to the CPU: {outcome.error}")
            return
        self.set_model(outcome.value)
        self.statusBar().showMessage(self._gpu_trouble)  # until the next message: it stays true

    # ---- painting ----------------------------------------------------------------------------------
    def set_tool(self, tool: Tool) -> None:
        self.controls.choose_tool(tool)
        self.canvas.set_tool(tool)
        self.channel_view.canvas.set_tool(tool)

    def paint_settings(self) -> PaintSettings:
        panel, controls = self.features_panel, self.controls
        layers = tuple(info.name for info in self.model.shape.layers) if self.model else ()
        image = self.last_result.image if self.last_result is not None else None
        return PaintSettings(panel.current_layer(), panel.selected_channels(), panel.channel_count(),
                             controls.strength.value(), controls.softness.value(),
                             controls.subtract.isChecked(), controls.anchor.isChecked(),
                             panel.features(), layers, image)

    def _brush_size_changed(self, size: int) -> None:
        radius = brush_radius(size, self.canvas.image_size()[0])  # the brush is in image pixels
        self.canvas.brush_radius = self.channel_view.canvas.brush_radius = radius

    def _stroke_changed(self, points: list, sign: int, finished: bool) -> None:
        radius = brush_radius(self.controls.brush_size.value(), self.canvas.image_size()[0])
        self.painter.stroke(points, radius, sign, finished, self.paint_settings())
        if finished:
            self._show_exact()

    def _rect_changed(self, box: tuple, sign: int, finished: bool) -> None:
        self.painter.rectangle(box, sign, finished, self.paint_settings())
        if finished:
            self._show_exact()

    # ---- the image ----------------------------------------------------------------------------------
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
            self.controls.compare.setChecked(comparing)
            self.request_render()

    # ---- dialogs ---------------------------------------------------------------------------------------
    def apply_to_seeds_dialog(self) -> None:
        from ganinterface.ui.export_dialog import ApplyToSeedsDialog

        if self.model is not None:
            ApplyToSeedsDialog(self, self.model, self.stack.scene, self.settings).exec()

    def open_export_dialog(self) -> None:
        from ganinterface.ui.export_dialog import ExportDialog

        if self.model is not None:
            ExportDialog(self, self.model, self.stack.scene, self.animation_panel.frames,
                         self.settings).exec()

    # ---- session ---------------------------------------------------------------------------------------
    def _session(self) -> Session | None:
        keyframes = (self._restored_keyframes if self._restored_keyframes is not None
                     else tuple(self.animation_panel.keyframes))
        return self.documents.session(keyframes)

    def restore_autosave(self) -> bool:
        """At start: offer the session a killed ganinterface left; True if the user takes it up
        (its model is then loading)."""
        session = self.autosave.take()
        if session is None:
            return False
        if self._ask.restore_session() != QMessageBox.StandardButton.Yes:
            self.autosave.discard()
            return False
        self._restored_keyframes = session.keyframes
        self.documents.restore(session)
        return True

    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        self.documents.open_dropped([url.toLocalFile() for url in event.mimeData().urls()
                                     if url.isLocalFile()])

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt naming)
        if not self.documents.maybe_save():
            event.ignore()
            return
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("window_state", self.saveState())
        self.autosave.discard()  # a clean exit: nothing to restore next time
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Stop the worker threads (tests call this; closing the window does too)."""
        if self._shut_down:
            return
        self._shut_down = True
        self.autosave.stop()
        self.autosave.release()
        self.controls.stop()
        self.animation_panel.stop()
        self.directions_panel.shutdown()
        self.channel_finder.shutdown()
        self.bridge.shutdown()
        self.loader_task.shutdown()
        self.cpu_task.shutdown()
        if self._gui_torch_threads is not None:  # this thread's torch count as it was (tests go on)
            import torch

            torch.set_num_threads(self._gui_torch_threads)

