"""The document and its files: open, save and recent scenes, the unsaved-changes question, latents
and recipes in and out, dropped files, the window title that names the file, and the autosave that
lets the next start restore what a killed process had open.

The document itself is the window's ``CommandStack``; ``Documents`` knows which file it came from
and whether it was saved.  Reading and writing the files is done by ``export.userfiles``, as on the
command line, so both say the same thing when a file is wrong.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PySide6.QtCore import QLockFile, QObject, QSettings, QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMessageBox

from ganinterface.atomic import remove_stale_temporaries
from ganinterface.engine import commands as cmd
from ganinterface.engine.encoder import encoder_beside
from ganinterface.engine.kinds import StyleMix
from ganinterface.engine.projection import STEPS, STEPS_FROM_A_GUESS, ProjectionSettings
from ganinterface.engine.scene import Recipe, Scene
from ganinterface.export import userfiles
from ganinterface.export.userfiles import Keyframe, Session, UserFileError
from ganinterface.ui.messages import MessageBoxes
from ganinterface.ui.model_loading import LoadedModel
from ganinterface.ui.projection_dialog import ProjectionDialog

SCENE_SUFFIXES = (".json", ".png")  # a PNG exported by ganinterface carries its scene
SAMPLE_SHRINK = 0.3  # draws from a handful of latents: a third closer to their mean looks typical
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
PICTURE_FILTER = f"Pictures ({' '.join('*' + s for s in PICTURE_SUFFIXES)});;All files (*)"
SCENE_FILTER = "Scenes (*.json *.png);;All files (*)"
RECIPE_FILTER = "Recipes (*.json);;All files (*)"
LATENT_FILTER = "Latents (*.npz *.npy);;All files (*)"
MODEL_FILTER = "Checkpoints (*.pkl *.pt *.pth *.safetensors);;All files (*)"
MAX_RECENT = 8
NAMED_LATENTS = 32  # latents whose source picture or file is remembered (keyframe names)
STATE_DIR_VARIABLE = "GANINTERFACE_STATE_DIR"  # tests and portable installs point it elsewhere
AUTOSAVE_DELAY_MS = 1500  # after the last change: a slider drag writes once, when it stops ...
AUTOSAVE_MAX_WAIT_S = 5.0  # ... or every few seconds while changes keep coming
AUTOSAVE_SLOT_NAME = re.compile(r"session(-[0-9]+)?\.json")  # session.json, session-2.json, ...
T = TypeVar("T")


def _carries_scene(path: str) -> bool:
    from ganinterface.export.images import read_png_scene

    try:
        return read_png_scene(path) is not None
    except (OSError, ValueError):
        return False


def state_dir() -> Path:
    """Where the window keeps its autosave: the user state folder, unless the variable says."""
    import platformdirs

    return Path(os.environ.get(STATE_DIR_VARIABLE) or platformdirs.user_state_dir("ganinterface"))


# ---- deciding, without a window ------------------------------------------------------------------
def scene_for_model(scene: Scene, model: LoadedModel) -> Scene:
    """``scene`` as it stands once ``model`` is loaded: another checkpoint's latent and edits do not
    apply to it, and its class must be one the model has."""
    if scene.checkpoint != model.checkpoint:
        scene = scene.replace(checkpoint=model.checkpoint, w=None, noise_maps=None, detail_maps=None,
                              edits=())
    class_index = fitting_class(scene.class_index, model.shape.c_dim)
    return scene if class_index == scene.class_index else scene.replace(class_index=class_index)


def fitting_class(class_index: int | None, c_dim: int) -> int | None:
    """The scene's class if the model can use it; else none (unconditional) or class 0."""
    if c_dim == 0:
        return None
    return class_index if class_index is not None and 0 <= class_index < c_dim else 0


# ---- the document ---------------------------------------------------------------------------------
class Documents(QObject):
    """The window's document: its file, its saved state, and what goes in and out of it.

    ``current_latent()`` is the W+ latent of the image shown (None before the first render).
    """

    model_requested = Signal(object)  # a checkpoint path to load, or None: the built-in model
    recent_changed = Signal(list)  # the recent scene files, newest first

    def __init__(self, window: QMainWindow, stack: cmd.CommandStack, settings: QSettings,
                 ask: MessageBoxes, current_latent: Callable[[], np.ndarray | None], *,
                 force_sync: bool = False) -> None:
        super().__init__(window)
        self._force_sync = force_sync  # projections run on the GUI thread (tests)
        self.projection_settings = ProjectionSettings()
        self._draws = 0  # "Sample like these" draws number 1, 2, ... in a session
        self.window = window
        self.stack = stack
        self.settings = settings
        self.ask = ask
        self.current_latent = current_latent
        self._latent_names: list[tuple[np.ndarray, str]] = []  # latents the undo stack may hold
        self.opened: Path | None = None  # the file the document was opened from or saved to
        self.model: LoadedModel | None = None
        stack.subscribe(self._show_title)
        self._show_title(stack.scene)

    @property
    def scene_path(self) -> Path | None:
        """Where Save writes: the scene file opened (a PNG's scene is saved as JSON elsewhere)."""
        return self.opened if self.opened and self.opened.suffix.lower() == ".json" else None

    def _show_title(self, _scene: Scene) -> None:
        name = self.opened.name if self.opened else "untitled"
        self.window.setWindowTitle(f"{name}[*] — ganinterface")
        self.window.setWindowModified(not self.stack.is_clean())

    def _status(self, text: str, milliseconds: int = 4000) -> None:
        self.window.statusBar().showMessage(text, milliseconds)

    def _read(self, title: str, reader: Callable[[], T]) -> T | None:
        """``reader()``, or None once the user is told in one line why it failed."""
        try:
            return reader()
        except UserFileError as error:
            self.ask.error(title, str(error))
            return None

    def _write(self, title: str, writer: Callable[[], None]) -> bool:
        """``writer()``; False once the user is told in one line why it failed."""
        return self._read(title, lambda: writer() or True) is not None

    # ---- models ----------------------------------------------------------------------------------
    def adopt(self, model: LoadedModel) -> bool:
        """Fit the document to a newly loaded ``model``; True if that changed it.

        A scene of another model loses its latent and edits and becomes a new, untitled document,
        so Save cannot overwrite the file it came from with it.
        """
        self.model = model
        scene = scene_for_model(self.stack.scene, model)
        if scene is self.stack.scene:
            return False
        if scene.checkpoint != self.stack.scene.checkpoint:
            self.opened = None
        self.stack.reset(scene)
        return True

    def model_hash(self) -> str:
        """sha256 of the current weights (ties recipes to the model they were made for)."""
        return "" if self.model is None else self.model.hash

    def open_model_dialog(self) -> None:
        if self.maybe_save():
            path, _ = QFileDialog.getOpenFileName(self.window, "Open model", "", MODEL_FILTER)
            if path:
                self.model_requested.emit(path)

    # ---- scenes ----------------------------------------------------------------------------------
    def maybe_save(self) -> bool:
        """True if it is fine to drop the document now (clean, saved, or the user discards it)."""
        if self.stack.is_clean():
            return True
        answer = self.ask.save_changes()
        if answer == QMessageBox.StandardButton.Save:
            return self.save_scene()
        return answer == QMessageBox.StandardButton.Discard

    def open_scene_dialog(self) -> None:
        if self.maybe_save():
            path, _ = QFileDialog.getOpenFileName(self.window, "Open scene", "", SCENE_FILTER)
            if path:
                self.open_scene(path)

    def open_recent(self, path: str) -> None:
        if self.maybe_save():
            self.open_scene(path)

    def open_scene(self, path: str | Path) -> bool:
        """Open a scene file (asks the model it names to load if that is not the one loaded)."""
        path = Path(path)
        scene = self._read("Open scene", lambda: userfiles.read_scene(path))
        if scene is None:
            return False
        self.opened = path
        self._remember(path)
        self.stack.reset(scene)
        if self.model is None or scene.checkpoint != self.model.checkpoint:
            self.model_requested.emit(scene.checkpoint)
        return True

    def open_dropped(self, paths: list[str]) -> None:
        """A dropped scene (.json, or a PNG we exported) opens; another picture is projected;
        anything else loads as a model."""
        if not paths:
            return
        suffix = Path(paths[0]).suffix.lower()
        if suffix in PICTURE_SUFFIXES and not (suffix == ".png" and _carries_scene(paths[0])):
            self.project_picture(paths[0])
        elif not self.maybe_save():
            return
        elif suffix in SCENE_SUFFIXES:
            self.open_scene(paths[0])
        else:
            self.model_requested.emit(paths[0])

    def open_image_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open image", "", PICTURE_FILTER)
        if path:
            self.project_picture(path)

    def project_picture(self, path: str | Path,
                        use: Callable[[Any, str], None] | None = None,
                        keep: tuple[str, str] | None = None) -> ProjectionDialog | None:
        """Open ``path`` in the projection dialog, where the user frames a crop with the model's
        aspect and projects it; Keep makes the result the current scene (one undo step), or
        calls ``use(projection, picture's name)`` (``keep``: the button's text and tooltip)."""
        if self.model is None:
            return None
        picture = self._read("Open image", lambda: userfiles.read_image(path))
        if picture is None:
            return None
        settings = self.projection_settings
        if encoder_beside(self.model.checkpoint).is_file() and settings.steps == STEPS:
            settings = dataclasses.replace(settings, steps=STEPS_FROM_A_GUESS)
        dialog = ProjectionDialog(self.window, self.model, picture, Path(path).name, settings,
                                  force_sync=self._force_sync, keep=keep)
        use = use or self._use_projection
        dialog.kept.connect(lambda found: use(found, Path(path).name))
        dialog.detail_box.toggled.connect(self._remember_detail)
        dialog.show()
        return dialog

    def _remember_detail(self, on: bool) -> None:
        self.projection_settings = dataclasses.replace(self.projection_settings, detail=on)

    def _use_projection(self, found, name: str) -> None:
        self._push_latent(f"Project {name}", name, **found.scene_fields())

    def save_scene(self) -> bool:
        if self.scene_path is None:
            return self.save_scene_as()
        return self.write_scene(self.scene_path)

    def save_scene_as(self) -> bool:
        suggested = self.opened.with_suffix(".json").name if self.opened else "scene.json"
        path, _ = QFileDialog.getSaveFileName(self.window, "Save scene", suggested, "Scenes (*.json)")
        return bool(path) and self.write_scene(Path(path))

    def write_scene(self, path: Path) -> bool:
        if not self._write("Save scene", lambda: userfiles.write_scene(path, self.stack.scene)):
            return False
        self.opened = Path(path)
        self._remember(self.opened)
        self.stack.mark_clean()  # the title follows: the file's name, not modified
        return True

    def recent(self) -> list[str]:
        value = self.settings.value("recent", [])
        return [value] if isinstance(value, str) else list(value or [])

    def _remember(self, path: Path) -> None:
        resolved = str(path.resolve())
        recent = [resolved] + [p for p in self.recent() if p != resolved]
        self.settings.setValue("recent", recent[:MAX_RECENT])
        self.recent_changed.emit(self.recent())

    # ---- the autosaved session -------------------------------------------------------------------
    def session(self, keyframes: tuple[Keyframe, ...]) -> Session | None:
        """What a crash would lose now; None when nothing (the document is saved, no keyframes)."""
        if self.stack.is_clean() and not keyframes:
            return None
        checkpoint = self.model.checkpoint if self.model else self.stack.scene.checkpoint
        return Session(self.stack.scene, keyframes, str(self.opened) if self.opened else None,
                       checkpoint)

    def restore(self, session: Session) -> None:
        """Take up an autosaved session: its scene as an unsaved change (Undo goes back to an empty
        document), the file it belongs to, and its model."""
        self.opened = Path(session.scene_path) if session.scene_path else None
        self.stack.reset(Scene(checkpoint=session.scene.checkpoint))
        self.stack.push(cmd.Command("Restore the autosaved session", lambda _scene: session.scene))
        if self.model is None or self.model.checkpoint != session.checkpoint:
            self.model_requested.emit(session.checkpoint)

    # ---- latents ---------------------------------------------------------------------------------
    def copy_latent(self) -> None:
        latent = self.current_latent()
        if latent is not None:
            QGuiApplication.clipboard().setText(userfiles.latent_to_text(latent))
            rows, columns = latent.shape
            self._status(f"Copied the W+ latent ({rows} × {columns})", 3000)

    def paste_latent(self) -> None:
        if self.model is not None:
            text = QGuiApplication.clipboard().text()
            latent = self._read("Paste latent",
                                lambda: userfiles.latent_from_text(text, self.model.shape))
            if latent is not None:
                self._push_latent("Paste latent", "pasted latent", latent)

    def _push_latent(self, label: str, name: str, w: np.ndarray, noise_maps: Any = None,
                     detail_maps: Any = None) -> None:
        """The scene's latent (with its noise and detail maps, if any) replaced, one undo step;
        ``name`` (where it came from: a picture, a file) is remembered for as long as a scene holds
        that latent (``latent_name``)."""
        self.stack.push(cmd.set_fields(label, w=w, noise_maps=noise_maps, detail_maps=detail_maps))
        self._latent_names = self._latent_names[1 - NAMED_LATENTS:] + [(self.stack.scene.w, name)]

    def latent_name(self) -> str:
        """Where the current scene's latent came from: its seed, or the picture or file it was
        projected from or loaded from ("" when not known, e.g. a restored session)."""
        scene = self.stack.scene
        if scene.w is None:
            return f"seed {scene.seed}"
        return next((name for w, name in reversed(self._latent_names) if w is scene.w), "")

    def load_latent_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Load latent", "", LATENT_FILTER)
        if path:
            self.load_latent(path)

    def load_latent(self, path: str | Path) -> None:
        """A latent file (a projected picture's, with its noise maps) or a ``.npy`` latent; one
        undo step."""
        if self.model is not None:
            noise_shapes = self.model.renderer.generator.noise_shapes()
            latent = self._checked_latent("Load latent", path, noise_shapes)
            if latent is not None:
                self._push_latent(f"Load latent {Path(path).name}", latent.source or Path(path).name,
                                  **latent.scene_fields())

    def style_mix_from_latent_dialog(self, first: int) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Take styles from a latent", "",
                                              LATENT_FILTER)
        if path:
            self.style_mix_from_latent(path, first)

    def style_mix_from_latent(self, path: str | Path, first: int) -> None:
        """Styles from ws row ``first`` on taken from a latent file (a projected picture's); one
        undo step, as ``render --style-from``."""
        latent = self._checked_latent("Style mix", path)
        if latent is not None:
            name = Path(path).name
            self.stack.push(cmd.add_edit(StyleMix(seed=0, first=first, w=latent.w, source=name,
                                                  name=f"style of {name}"),
                                         f"Style mix from {name}"))

    def fill_from_latent_dialog(self, index: int) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Fill the region from a latent", "",
                                              LATENT_FILTER)
        if path:
            self.fill_from_latent(index, path)

    def fill_from_latent(self, index: int, path: str | Path) -> None:
        """The resample edit ``index`` takes its region from a latent file; one undo step, as
        ``render --resample-from``."""
        latent = self._checked_latent("Fill from latent", path)
        if latent is not None:
            name = Path(path).name
            self.stack.push(cmd.update_edit(index, f"Fill from {name}", w=latent.w, source=name))

    def _checked_latent(self, title: str, path: str | Path,
                        noise_shapes: dict[str, tuple[int, ...]] | None = None,
                        ) -> "userfiles.LatentFile | None":
        """A latent file for this model (shape, weights and, given ``noise_shapes``, noise maps),
        or None after saying what is wrong."""
        if self.model is None:
            return None
        return self._read(title, lambda: userfiles.read_latent_file(
            path, self.model.shape, self.model_hash(), noise_shapes))

    def sample_like_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self.window, "Sample like these latents", "",
                                                LATENT_FILTER)
        if paths:
            self.sample_like(paths)

    def sample_like(self, paths: list[str]) -> None:
        """A new portrait drawn from the Gaussian fitted, in W, to the latent files (projected
        pictures); each call draws another; one undo step."""
        from ganinterface.engine.latents import LatentError, fit_gaussian

        if self.model is None:
            return
        latents = self._read("Sample like these", lambda: [
            userfiles.read_latent_file(path, self.model.shape, self.model_hash()).w for path in paths])
        if latents is None:
            return
        try:
            gaussian = fit_gaussian(latents)
        except LatentError as error:
            self.ask.error("Sample like these", str(error))
            return
        self._draws += 1
        w = gaussian.sample(1, seed=self._draws, shrink=SAMPLE_SHRINK)[0]
        self._push_latent(f"Sample like {len(paths)} latents", f"sample like {len(paths)} latents", w)

    def save_latent_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self.window, "Save latent", "latent.npz",
                                              "Latent file (*.npz);;NumPy, the latent alone (*.npy)")
        if path:
            self.save_latent(path)

    def save_latent(self, path: str | Path) -> bool:
        """The current W+ latent (after directions): as a latent file (``.npz``) with the scene's
        noise and detail maps, the model's hash and where it came from, or as a bare ``.npy``."""
        latent = self.current_latent()
        if latent is None:
            return False
        if Path(path).suffix.lower() != ".npz":
            return self._write("Save latent", lambda: userfiles.write_latent(path, latent))
        scene = self.stack.scene
        found = userfiles.LatentFile(w=latent, noise=scene.noise_maps, model_hash=self.model_hash(),
                                     source=self.latent_name(), detail=scene.detail_maps)
        return self._write("Save latent", lambda: userfiles.write_latent_file(path, found))

    # ---- recipes ---------------------------------------------------------------------------------
    def current_recipe(self, name: str = "") -> Recipe:
        return Recipe(edits=self.stack.scene.edits, name=name, model_hash=self.model_hash(),
                      provenance={"made_with": "ganinterface window", "seed": self.stack.scene.seed})

    def save_recipe_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self.window, "Save recipe", "recipe.json", RECIPE_FILTER)
        if path:
            self.save_recipe(path, Path(path).stem)

    def save_recipe(self, path: str | Path, name: str = "") -> bool:
        path = Path(path)
        recipe = self.current_recipe(name)
        if not self._write("Save recipe", lambda: userfiles.write_recipe(path, recipe)):
            return False
        self._status(f"Saved recipe {path.name}")
        return True

    def apply_recipe_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Apply recipe", "", RECIPE_FILTER)
        if path:
            self.apply_recipe(path)

    def apply_recipe(self, path: str | Path) -> bool:
        """Add a recipe's edits to the scene, unless it was made for another model."""
        path = Path(path)
        recipe = self._read("Apply recipe", lambda: userfiles.read_recipe(path, self.model_hash()))
        if recipe is None:
            return False
        self.stack.push(cmd.apply_recipe(recipe, f"Apply recipe {recipe.name or path.stem}"))
        return True


# ---- crash recovery -----------------------------------------------------------------------------------
class Autosave(QObject):
    """The open session, written to ``folder`` (the user state folder) shortly after each change, so
    that a killed process loses at most the last moments; a clean exit removes it.

    Each running window holds a slot of its own (``session.json``, ``session-2.json``, ... each with
    a lock file), so two windows open at once neither overwrite nor remove each other's session, and
    a start takes up only the sessions of processes that are gone.

    ``collect()`` gives the session to save, or None when there is nothing to lose (then the file is
    removed).  Writing is atomic and takes milliseconds, so it runs on the GUI thread.
    """

    def __init__(self, parent: QObject, collect: Callable[[], Session | None], ask: MessageBoxes,
                 status: Callable[[str], None], folder: Path | None = None) -> None:
        super().__init__(parent)
        folder = folder or state_dir()
        self._lock, self.path = _take_free_slot(folder)
        self.collect = collect
        self.ask = ask
        self.status = status
        self._written: str | None = None  # the text last written: the same is not written again
        self._waiting_since: float | None = None  # the first change not saved yet
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(AUTOSAVE_DELAY_MS)
        self._timer.timeout.connect(self.save_now)
        remove_stale_temporaries(self.path.parent)  # left by a process killed while autosaving

    def schedule(self, *_: object) -> None:
        """Save once no change has come for ``AUTOSAVE_DELAY_MS``, or at once when changes have kept
        coming for ``AUTOSAVE_MAX_WAIT_S``."""
        now = time.monotonic()
        self._waiting_since = self._waiting_since or now
        if now - self._waiting_since >= AUTOSAVE_MAX_WAIT_S:
            self.save_now()
        else:
            self._timer.start()

    def save_now(self) -> None:
        self._timer.stop()
        self._waiting_since = None
        session = self.collect()
        if session is None:
            self.discard()
            return
        text = userfiles.session_to_json(session)
        if text == self._written:
            return
        try:
            userfiles.make_folder_for(self.path)
            userfiles.write_session(self.path, session)
        except UserFileError as error:  # the status bar, not a dialog every few seconds
            self.status(f"Autosave failed: {error}")
            return
        self._written = text

    def stop(self) -> None:
        self._timer.stop()
        self._waiting_since = None

    def discard(self) -> None:
        """Remove the autosave: the session ended cleanly, or there is nothing to lose."""
        self.stop()
        self._written = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def take(self) -> Session | None:
        """The session a killed process left, if any; one that cannot be read is reported in one
        line and set aside (renamed), so it is neither lost nor offered again."""
        if not self.path.exists() and not self._adopt_orphan():
            return None
        try:
            return userfiles.read_session(self.path)
        except UserFileError as error:
            aside = self.path.with_name(f"session-unreadable-{time.strftime('%Y%m%d-%H%M%S')}.json")
            with contextlib.suppress(OSError):
                os.replace(self.path, aside)
            self.ask.error("Restore session", f"{error} (set aside as {aside.name})")
            return None

    def _adopt_orphan(self) -> bool:
        """Move the newest session another, killed, window left into this window's slot."""
        orphans = []
        for path in self.path.parent.glob("session*.json"):
            if path == self.path or not AUTOSAVE_SLOT_NAME.fullmatch(path.name):
                continue
            lock = _slot_lock(path)
            if lock.tryLock(0):
                orphans.append((path.stat().st_mtime, path, lock))
        if not orphans:
            return False
        _, newest, _lock = max(orphans, key=lambda orphan: orphan[0])
        try:
            os.replace(newest, self.path)
        except OSError:
            return False
        finally:
            for _, _, lock in orphans:
                lock.unlock()
        return True

    def release(self) -> None:
        """Give the slot up (the window is closing)."""
        self._lock.unlock()


def _slot_lock(session_path: Path) -> QLockFile:
    lock = QLockFile(str(session_path.with_suffix(".lock")))
    lock.setStaleLockTime(0)  # stale only when its process is gone, however long a window stays open
    return lock


def _take_free_slot(folder: Path) -> tuple[QLockFile, Path]:
    """The first autosave slot no running window holds, locked for this one.  Without a usable
    folder the first slot is used unlocked; the autosave then reports why it cannot write."""
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
    for number in range(1, 1000):
        path = folder / ("session.json" if number == 1 else f"session-{number}.json")
        lock = _slot_lock(path)
        if lock.tryLock(0) or lock.error() != QLockFile.LockError.LockFailedError:
            return lock, path
    return _slot_lock(folder / "session.json"), folder / "session.json"
