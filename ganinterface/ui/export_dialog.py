"""Export dialogs: the image, a strip, a PNG sequence, a GIF or an MP4; and a recipe over many seeds.

Jobs (``export.jobs``) run on their own worker thread with their own Renderer (the window's renderer
keeps serving the canvas), report progress through a queued signal and stop at Cancel; the export
module writes atomically, so a cancelled export leaves no file behind.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QSettings, QStandardPaths, Qt, Signal, Slot
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog,
                               QFormLayout, QHBoxLayout, QLabel, QLineEdit, QProgressBar,
                               QPushButton, QSpinBox, QVBoxLayout, QWidget)

from ganinterface.engine.scene import Scene
from ganinterface.export import jobs
from ganinterface.export.progress import Cancelled, CancelToken
from ganinterface.models import size_text
from ganinterface.ui.workers import BackgroundTask

# label -> (format, default file name, is an animation)
EXPORT_KINDS: dict[str, tuple[str, str, bool]] = {
    "Current image (PNG, reopens as a scene)": ("png", "image.png", False),
    "Animation as a frame strip (PNG)": ("strip", "strip.png", True),
    "Animation as a PNG sequence (folder)": ("png-seq", "frames", True),
    "Animation as GIF": ("gif", "animation.gif", True),
    "Animation as MP4 (H.264)": ("mp4", "animation.mp4", True),
}
LAST_FOLDER = "export_folder"  # settings key: where the last export or seeds job wrote into
LAST_SCALE = "export_scale"  # settings key: the Size of the last export written
FIRST_EXPORT_HEIGHT = 512  # pixels: the first export of a small model is enlarged to about this high


def default_folder(settings: QSettings) -> Path:
    """Where a new export goes: the folder last written into, else the user's Pictures folder (or
    home), never the current directory, which in a checkout is inside the repository."""
    last = settings.value(LAST_FOLDER, "", type=str)
    pictures = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
    for folder in (last, pictures):
        if folder and Path(folder).is_dir():
            return Path(folder)
    return Path.home()


@dataclasses.dataclass(frozen=True)
class ExportJob:
    generator: Any
    device: Any
    fmt: str  # "png" or one of export.animation.FORMATS
    path: Path
    scenes: tuple[Scene, ...]  # one scene for "png"
    fps: float = 12.0
    scale: int = 1


def run_export(job: ExportJob, progress: Callable[[int, int], None], cancel: CancelToken) -> Path:
    """Render the job's scenes with a Renderer of its own and write them; Cancelled if cancelled."""
    from ganinterface.engine.renderer import Renderer

    renderer = Renderer(job.generator, job.device)
    if job.fmt == "png":
        path = jobs.export_image(renderer, job.scenes[0], job.path, scale=job.scale, cancel=cancel)
        progress(1, 1)
        return path
    size = None
    if job.scale != 1:
        height, width = job.generator.img_height, job.generator.img_width
        size = (width * job.scale, height * job.scale)
    return jobs.export_animation(renderer, job.scenes, job.path, job.fmt, fps=job.fps, size=size,
                                 resample="nearest", progress=progress, cancel=cancel)


@dataclasses.dataclass(frozen=True)
class SeedsJob:
    generator: Any
    device: Any
    scene: Scene
    seeds: tuple[int, ...]
    folder: Path


def run_seeds(job: SeedsJob, progress: Callable[[int, int], None], cancel: CancelToken) -> Path:
    """The scene's edits on every seed, one PNG (carrying its scene) per seed: seed00042.png."""
    from ganinterface.engine.renderer import Renderer

    jobs.apply_to_seeds(Renderer(job.generator, job.device), job.scene, job.seeds,
                        lambda seed: job.folder / f"seed{seed:05d}.png", progress=progress,
                        cancel=cancel)
    return job.folder


class JobRunner(QObject):
    """Runs ``function(job, progress, cancel)`` on a worker; signals arrive on the GUI thread."""

    progressed = Signal(int, int)
    finished = Signal(object)  # Outcome (value: the path written; error: one line, or "cancelled")

    def __init__(self, function: Callable, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._function = function
        self.cancel_token = CancelToken()
        self._task = BackgroundTask(self._run, "ganinterface-export", self)
        self._task.finished.connect(self._done)

    def _run(self, job: Any) -> Any:
        try:
            return self._function(job, self.progressed.emit, self.cancel_token)
        except Cancelled:
            return None

    def start(self, job: Any) -> None:
        self.cancel_token = CancelToken()
        self._task.start(job)

    def busy(self) -> bool:
        return self._task.busy()

    def cancel(self) -> None:
        self.cancel_token.cancel()

    @Slot(object, object)
    def _done(self, _job: object, outcome: object) -> None:
        self.finished.emit(outcome)

    def shutdown(self) -> None:
        self.cancel()
        self._task.shutdown()


class _JobDialog(QDialog):
    """Shared frame: a form, a progress bar, Start and Cancel/Close.

    After a job has written its files the dialog stays open, saying where they went, and Cancel
    becomes Close: nothing is left to cancel, and another format can be written from the same form.
    """

    def __init__(self, parent: QWidget | None, title: str, function: Callable,
                 settings: QSettings) -> None:
        super().__init__(parent)
        self.settings = settings
        self.setWindowTitle(title)
        self.setMinimumWidth(460)
        self.form = QFormLayout()
        self.progress = QProgressBar()
        self.progress.setValue(0)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox()
        self.start_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel_or_close)
        layout = QVBoxLayout(self)
        layout.addLayout(self.form)
        layout.addWidget(self.progress)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.runner = JobRunner(function, self)
        self.runner.progressed.connect(self._progressed)
        self.runner.finished.connect(self._finished)
        self.written: Path | None = None

    def _path_row(self, default: str, folder: bool = False) -> QLineEdit:
        edit = QLineEdit(str(default_folder(self.settings) / default))
        browse = QPushButton("Browse…")

        def pick() -> None:
            if folder:
                chosen = QFileDialog.getExistingDirectory(self, "Choose a folder", edit.text())
            else:
                chosen, _ = QFileDialog.getSaveFileName(self, "Export to", edit.text())
            if chosen:
                edit.setText(chosen)

        browse.clicked.connect(pick)
        row = QHBoxLayout()
        row.addWidget(edit, 1)
        row.addWidget(browse)
        self.form.addRow("Save to", row)
        return edit

    def make_job(self) -> Any:
        raise NotImplementedError

    def start(self) -> None:
        try:
            job = self.make_job()
        except ValueError as error:
            self.message.setText(str(error))
            return
        self.written = None
        self.start_button.setEnabled(False)
        self.cancel_button.setText("Cancel")
        self.message.setText("Working…")
        self.progress.setValue(0)
        self.runner.start(job)

    def cancel_or_close(self) -> None:
        if self.runner.busy():
            self.runner.cancel()
            self.message.setText("Cancelling…")
        else:
            self.reject()

    @Slot(int, int)
    def _progressed(self, done: int, total: int) -> None:
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)

    @Slot(object)
    def _finished(self, outcome: Any) -> None:
        self.start_button.setEnabled(True)
        if outcome.error:
            self.message.setText(f"Failed: {outcome.error}")
        elif outcome.value is None:
            self.message.setText("Cancelled: nothing was written.")
            self.progress.setValue(0)
        else:
            self.written = Path(outcome.value)
            self.message.setText(f"Wrote {self.written}")
            self.settings.setValue(LAST_FOLDER, str(self.written.parent))
            self._remember()
            self.cancel_button.setText("Close")

    def _remember(self) -> None:
        """What a dialog of this kind keeps for the next one, once it has written."""

    def done(self, result: int) -> None:  # noqa: D401 (Qt override): stop the worker on close
        self.runner.shutdown()
        super().done(result)


class ExportDialog(_JobDialog):
    def __init__(self, parent: QWidget | None, model: Any, scene: Scene,
                 frames: Callable[[], list[Scene]], settings: QSettings) -> None:
        super().__init__(parent, "Export", run_export, settings)
        self.model, self.scene, self.frames = model, scene, frames
        self.kind = QComboBox()
        self.kind.addItems(list(EXPORT_KINDS))
        self.form.addRow("What", self.kind)
        self.path = self._path_row("image.png")
        self.fps = QDoubleSpinBox()
        self.fps.setRange(1.0, 60.0)
        self.fps.setValue(12.0)
        self.form.addRow("Frames per second", self.fps)
        self.scale = QSpinBox()
        self.scale.setRange(1, 16)
        self.scale.setSuffix("×")
        self.scale.setToolTip("Enlarge every frame (nearest neighbour: pixels stay crisp)")
        self.scale.setValue(_remembered_scale(settings, model.shape.height))
        self.form.addRow("Size", self.scale)
        self.frame_note = QLabel("")
        self.frame_note.setWordWrap(True)
        # room for the animated note's second line from the start: the dialog does not grow for it
        self.frame_note.setMinimumHeight(2 * self.frame_note.fontMetrics().lineSpacing())
        self.form.addRow("Frames", self.frame_note)
        self.kind.currentTextChanged.connect(self._kind_changed)
        self.scale.valueChanged.connect(lambda _v: self._describe_frames())
        self._kind_changed(self.kind.currentText())

    def _kind_changed(self, label: str) -> None:
        _, default, animated = EXPORT_KINDS[label]
        self.path.setText(str(Path(self.path.text()).with_name(default)))
        self.fps.setEnabled(animated)
        self._describe_frames()

    def _describe_frames(self) -> None:
        _, _, animated = EXPORT_KINDS[self.kind.currentText()]
        height, width = self.model.shape.height, self.model.shape.width
        size = size_text(width * self.scale.value(), height * self.scale.value())
        count = len(self.frames()) if animated else 1
        self.frame_note.setText(f"{count} frame{'s' if count != 1 else ''} of {size}"
                                + ("  (set them up in the Animation tab)" if animated else ""))

    def make_job(self) -> ExportJob:
        fmt, _, animated = EXPORT_KINDS[self.kind.currentText()]
        scenes = tuple(self.frames()) if animated else (self.scene,)
        if not scenes:
            raise ValueError("No animation frames: add keyframes in the Animation tab first.")
        path = Path(self.path.text()).expanduser()
        if not path.parent.is_dir():
            raise ValueError(f"Folder {path.parent} does not exist.")
        renderer = self.model.renderer
        return ExportJob(renderer.generator, renderer.device, fmt, path, scenes,
                         float(self.fps.value()), self.scale.value())

    def _remember(self) -> None:
        self.settings.setValue(LAST_SCALE, self.scale.value())


def _remembered_scale(settings: QSettings, height: int) -> int:
    try:
        return int(settings.value(LAST_SCALE, default_scale(height)))
    except (TypeError, ValueError):  # a settings file edited by hand: the default
        return default_scale(height)


def default_scale(height: int) -> int:
    """The first export's Size: a small model's frames enlarged to about FIRST_EXPORT_HEIGHT pixels
    high (a 128 px portrait 4 times), a large model's as they are."""
    return max(1, min(16, round(FIRST_EXPORT_HEIGHT / height)))


class ApplyToSeedsDialog(_JobDialog):
    def __init__(self, parent: QWidget | None, model: Any, scene: Scene,
                 settings: QSettings) -> None:
        super().__init__(parent, "Apply edits to seeds", run_seeds, settings)
        self.model, self.scene = model, scene
        self.seeds = QLineEdit(f"{scene.seed}-{scene.seed + 9}")
        self.seeds.setToolTip("Seeds, e.g. 0-99 or 1,5,9")
        self.form.addRow("Seeds", self.seeds)
        self.path = self._path_row("recipe-output", folder=True)
        self.form.addRow("", QLabel(f"{len(scene.edits)} edit(s); one PNG per seed, each reopenable "
                                    "as a scene"))

    def make_job(self) -> SeedsJob:
        from ganinterface.engine.latents import LatentError, parse_seeds

        try:
            seeds = tuple(parse_seeds(self.seeds.text()))
        except LatentError as error:
            raise ValueError(f"Seeds: {error}") from None
        renderer = self.model.renderer
        return SeedsJob(renderer.generator, renderer.device, self.scene, seeds,
                        Path(self.path.text()).expanduser())
