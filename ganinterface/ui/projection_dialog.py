"""File ▸ Open image…: the user frames part of a picture, which is projected into the model, the
reconstruction beside it.

The frame (``ui.crop_view``) has the model's aspect and starts as the largest centred one; Project
(or Enter) crops it (``engine.projection.crop_to_aspect``) and starts the search, which runs on a
worker thread; each step's render arrives on the GUI thread through a queued signal.  The frame stays
as it was while the dialog is open, so the user can move it and project again.  Cancel stops the
search and keeps nothing; Keep stops it (if it is still running) and hands the latent found so far
to whoever opened the dialog, which makes it the current scene as one undo step.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QGridLayout, QLabel,
                               QProgressBar, QWidget)

from ganinterface.engine.crop_frame import CropFrame
from ganinterface.engine.encoder import guess_for
from ganinterface.engine.projection import ProjectionSettings, crop_to_aspect, project
from ganinterface.engine.picture_distance import distance_for
from ganinterface.engine.pixels import to_uint8_image
from ganinterface.export.progress import CancelToken
from ganinterface.models.base import CheckpointError
from ganinterface.ui.crop_view import VIEW_SIDE, CropView
from ganinterface.ui.workers import BackgroundTask

# Steps of the built-in model take ~30 ms; showing each one cost the search 8-10% of its time (the
# GUI thread's painting takes a core from it), so the reconstruction is shown at most this often.
PREVIEW_SECONDS = 1 / 15
KEEP_AS_SCENE = ("Keep", "Use the latent found so far as the current scene")
HINT = "Drag the frame, or a corner, or turn the wheel, to choose the crop; Enter projects it."


class ProjectionDialog(QDialog):
    """Projects the part of ``picture`` ((h, w, 3) uint8) the user frames with ``model``'s
    generator; ``keep`` is the Keep button's text and tooltip (what ``kept`` will do)."""

    kept = Signal(object)  # engine.projection.Projection
    _stepped = Signal(int, int, object)  # step, steps, render (H, W, 3) uint8: worker -> GUI

    def __init__(self, parent: QWidget, model: Any, picture: np.ndarray, name: str,
                 settings: ProjectionSettings = ProjectionSettings(), *, force_sync: bool = False,
                 keep: tuple[str, str] | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Project {name}")
        self._model, self._picture, self._settings = model, picture, settings
        generator = model.renderer.generator
        self._cancel = CancelToken()
        self._keep_when_done = False
        self._distance: Any = None
        self.result: Any = None
        frame = CropFrame.largest(picture.shape[1], picture.shape[0],
                                  (generator.img_width, generator.img_height))
        self.crop_view = CropView(picture, frame)
        self.render_view = QLabel("The model's drawing of the frame appears here as it searches.")
        self.render_view.setWordWrap(True)
        self.render_view.setStyleSheet("color: gray;")
        # the reconstruction fits the square the picture fits, so the two compare at a glance; its
        # room is there from the start: the dialog must not grow when it first shows
        scale = VIEW_SIDE / max(generator.img_width, generator.img_height)
        self._preview_size = (round(generator.img_width * scale), round(generator.img_height * scale))
        self.render_view.setMinimumSize(*self._preview_size)
        self.render_view.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.progress = QProgressBar()
        self.progress.setRange(0, settings.steps)
        self.detail_box = QCheckBox("&Fine detail")
        self.detail_box.setChecked(settings.detail)
        self.detail_box.setToolTip(
            "Also fit a detail map to the model's middle layers: a closer likeness (built-in model: "
            "about 4 dB). Untick to fit the latent alone")
        self.figures = QLabel(HINT)
        self.figures.setWordWrap(True)
        self.buttons = QDialogButtonBox()
        self.project_button = self.buttons.addButton("Project", QDialogButtonBox.ButtonRole.ActionRole)
        keep = keep or KEEP_AS_SCENE
        self.keep_button = self.buttons.addButton(keep[0], QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.project_button.setToolTip("Search for the latent of the framed crop (Enter)")
        self.keep_button.setToolTip(keep[1])
        for button in (self.keep_button, self.cancel_button):
            button.setAutoDefault(False)
        self.project_button.setDefault(True)
        self.keep_button.setEnabled(False)
        self.project_button.clicked.connect(self.project)
        self.keep_button.clicked.connect(self.keep)
        self.cancel_button.clicked.connect(self.reject)
        layout = QGridLayout(self)
        layout.addWidget(QLabel("Picture: the frame is what is projected"), 0, 0)
        layout.addWidget(QLabel("Reconstruction"), 0, 1)
        layout.addWidget(self.crop_view, 1, 0)
        layout.addWidget(self.render_view, 1, 1)
        layout.addWidget(self.detail_box, 2, 0, 1, 2)
        layout.addWidget(self.progress, 3, 0, 1, 2)
        layout.addWidget(self.figures, 4, 0, 1, 2)
        layout.addWidget(self.buttons, 5, 0, 1, 2)
        self.crop_view.setFocus()
        self.crop_view.changed.connect(lambda: self.project_button.setDefault(True))  # a new crop
        self._stepped.connect(self._show_step)
        self._task = BackgroundTask(self._run, "projection", self, force_sync=force_sync)
        self._task.finished.connect(self._finished)

    def project(self) -> None:
        """Search for the latent of the framed crop (the frame stays as it is)."""
        if self._task.busy():
            return
        target = crop_to_aspect(self._picture, self._model.renderer.generator, self.crop_view.frame.box())
        self.result = None
        self._keep_when_done = False
        self._cancel = CancelToken()
        self.progress.setValue(0)
        self.figures.setText("Searching…")
        self.project_button.setEnabled(False)
        self.keep_button.setEnabled(True)
        self.project_button.setDefault(True)
        self._settings = dataclasses.replace(self._settings, detail=self.detail_box.isChecked())
        self._task.start(target)

    def _run(self, target: Any) -> Any:  # worker thread
        generator = self._model.renderer.generator
        if self._distance is None:  # read once: a checkpoint's D comes from the whole file
            self._distance = distance_for(self._model.checkpoint, generator)
        distance = self._distance
        target = target.to(generator.w_avg.device)
        start_w, note = None, "".join(f"; {line}" for line in distance.notes)
        try:  # the encoder beside the model (shipped for the built-in one) starts near the answer
            guess = guess_for(self._model.checkpoint, generator)
        except CheckpointError as error:
            note += f"; without the encoder: {error}"
        else:
            start_w = None if guess is None else guess(target)
        previews = _Previews(self._stepped.emit)
        found = project(generator, target, self._settings, start_w=start_w, distance=distance,
                        progress=previews, cancel=self._cancel)
        previews.flush()
        return found, f"; distance: {distance.description}{note}"

    @Slot(int, int, object)
    def _show_step(self, step: int, steps: int, image: np.ndarray) -> None:
        self.progress.setValue(step)
        self.render_view.setStyleSheet("")
        _show(self.render_view, image, self._preview_size)

    @Slot(object, object)
    def _finished(self, _target: Any, outcome: Any) -> None:
        self.project_button.setEnabled(True)
        if outcome.error is not None:
            self.figures.setText(f"Projection failed: {outcome.error}")
            self.keep_button.setEnabled(False)
            return
        self.result, note = outcome.value
        self.keep_button.setDefault(True)  # Enter keeps what was found, until the frame moves
        self.progress.setValue(self.result.steps)
        self.figures.setText(f"PSNR {self.result.psnr:.2f} dB after {self.result.steps} steps "
                             f"({self.result.seconds:.1f} s){note}")
        if self._keep_when_done and not self.isHidden():
            self._hand_over()

    def keep(self) -> None:
        """Keep the result; while the search runs, stop it and keep what it has found."""
        if self.result is None:
            self._keep_when_done = True
            self._cancel.cancel()
            self.keep_button.setEnabled(False)
            return
        self._hand_over()

    def _hand_over(self) -> None:
        self.kept.emit(self.result)
        self.accept()

    def reject(self) -> None:
        self._cancel.cancel()
        super().reject()

    def done(self, result: int) -> None:
        self._cancel.cancel()
        self._task.shutdown()
        super().done(result)


class _Previews:
    """The search's progress callback (worker thread): hands a step's render on at most every
    ``PREVIEW_SECONDS``; ``flush`` hands on the last step's if it was held back, so the view ends
    on the latent the search returns (a Keep mid-search included)."""

    def __init__(self, emit: Any):
        self._emit = emit
        self._last_shown = -PREVIEW_SECONDS
        self._held: tuple[int, int, Any] | None = None

    def __call__(self, step: int, steps: int, image: Any) -> None:
        now = time.monotonic()
        if now - self._last_shown < PREVIEW_SECONDS:
            self._held = (step, steps, image)
            return
        self._last_shown, self._held = now, None
        self._hand_on(step, steps, image)

    def flush(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self._hand_on(*held)

    def _hand_on(self, step: int, steps: int, image: Any) -> None:
        self._emit(step, steps, to_uint8_image(image[0].detach()))


def _show(label: QLabel, image: np.ndarray, size: tuple[int, int]) -> None:
    image = np.ascontiguousarray(image)
    height, width = image.shape[:2]
    qimage = QImage(image.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()
    pixmap = QPixmap.fromImage(qimage).scaled(*size, Qt.AspectRatioMode.KeepAspectRatio,
                                              Qt.TransformationMode.FastTransformation)
    label.setPixmap(pixmap)
