"""The document and its files: open, save and recent scenes, the unsaved-changes question, latents
and recipes in and out, dropped files, and the window title that names the file.

The document itself is the window's ``CommandStack``; ``Documents`` knows which file it came from
and whether it was saved.  Reading and writing the files is done by the small functions at the top,
which know nothing of Qt.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMessageBox

from ganinterface.engine import commands as cmd
from ganinterface.engine.scene import Recipe, Scene, SceneFormatError
from ganinterface.ui.latent_panel import latent_from_array
from ganinterface.ui.messages import MessageBoxes
from ganinterface.ui.model_loading import LoadedModel

SCENE_SUFFIXES = (".json", ".png")  # a PNG exported by ganinterface carries its scene
SCENE_FILTER = "Scenes (*.json *.png);;All files (*)"
RECIPE_FILTER = "Recipes (*.json);;All files (*)"
LATENT_FILTER = "NumPy (*.npy);;All files (*)"
MODEL_FILTER = "Checkpoints (*.pkl *.pt *.pth *.safetensors);;All files (*)"
MAX_RECENT = 8
CLIPBOARD_KEY = "ganinterface.latent"
T = TypeVar("T")


# ---- the files ------------------------------------------------------------------------------------
def read_scene(path: Path) -> Scene:
    """The scene of a JSON file, or of a PNG exported with one (SceneFormatError if it has none)."""
    if path.suffix.lower() == ".png":
        from ganinterface.export.images import read_png_scene

        scene = read_png_scene(path)
        if scene is None:
            raise SceneFormatError("this PNG carries no ganinterface scene")
        return scene
    return Scene.from_json(path.read_text(encoding="utf-8"))


def write_scene(path: Path, scene: Scene) -> None:
    from ganinterface.atomic import atomic_write_text

    atomic_write_text(path, scene.to_json())


def read_recipe(path: Path, model_hash: str) -> Recipe:
    """The recipe in ``path``, refused if it was made for a model other than ``model_hash``."""
    recipe = Recipe.from_json(path.read_text(encoding="utf-8"))
    if recipe.model_hash and recipe.model_hash != model_hash:
        raise SceneFormatError(f"made for another model ({recipe.model_hash[:12]}…), "
                               f"not this one ({model_hash[:12]}…)")
    return recipe


def write_recipe(path: Path, recipe: Recipe) -> None:
    from ganinterface.atomic import atomic_write_text

    atomic_write_text(path, recipe.to_json())


def read_latent(path: Path) -> np.ndarray:
    return np.load(path, allow_pickle=False)


def write_latent(path: Path, latent: np.ndarray) -> None:
    from ganinterface.atomic import atomic_write

    with atomic_write(path) as handle:
        np.save(handle, latent, allow_pickle=False)


def latent_as_text(latent: np.ndarray) -> str:
    """A latent as clipboard text: JSON, so it can be pasted into another ganinterface."""
    return json.dumps({CLIPBOARD_KEY: latent.tolist()})


def latent_from_text(text: str) -> np.ndarray:
    """The latent in clipboard text (ValueError, KeyError or TypeError if there is none)."""
    return np.asarray(json.loads(text)[CLIPBOARD_KEY], dtype=np.float32)


def failure(path: Path, error: Exception) -> str:
    """One line for a file that could not be read or written, naming it."""
    reason = error.strerror if isinstance(error, OSError) and error.strerror else error
    return f"{path.name}: {reason}"


def scene_for_model(scene: Scene, model: LoadedModel) -> Scene:
    """``scene`` as it stands once ``model`` is loaded: another checkpoint's latent and edits do not
    apply to it, and its class must be one the model has."""
    if scene.checkpoint != model.checkpoint:
        scene = scene.replace(checkpoint=model.checkpoint, w=None, edits=())
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
                 ask: MessageBoxes, current_latent: Callable[[], np.ndarray | None]) -> None:
        super().__init__(window)
        self.window = window
        self.stack = stack
        self.settings = settings
        self.ask = ask
        self.current_latent = current_latent
        self.opened: Path | None = None  # the file the document was opened from or saved to
        self.model: LoadedModel | None = None
        self._model_hash: tuple[LoadedModel, str] | None = None
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

    def _read(self, title: str, path: Path, reader: Callable[..., T], *args: object) -> T | None:
        """``reader(path, *args)``, or None once the user is told in one line why it failed."""
        try:
            return reader(path, *args)
        except (OSError, ValueError) as error:
            self.ask.error(title, failure(path, error))
            return None

    def _write(self, title: str, path: Path, writer: Callable[[Path, Any], None],
               value: object) -> bool:
        """``writer(path, value)``; False once the user is told in one line why it failed."""
        try:
            writer(path, value)
        except OSError as error:
            self.ask.error(title, failure(path, error))
            return False
        return True

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
        from ganinterface.models.native import generator_hash

        if self.model is None:
            return ""
        if self._model_hash is None or self._model_hash[0] is not self.model:
            self._model_hash = (self.model, generator_hash(self.model.renderer.generator))
        return self._model_hash[1]

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
        scene = self._read("Open scene", path, read_scene)
        if scene is None:
            return False
        self.opened = path
        self._remember(path)
        self.stack.reset(scene)
        if self.model is None or scene.checkpoint != self.model.checkpoint:
            self.model_requested.emit(scene.checkpoint)
        return True

    def open_dropped(self, paths: list[str]) -> None:
        """A dropped scene (.json, or a PNG we exported) opens; anything else loads as a model."""
        if not paths or not self.maybe_save():
            return
        if Path(paths[0]).suffix.lower() in SCENE_SUFFIXES:
            self.open_scene(paths[0])
        else:
            self.model_requested.emit(paths[0])

    def save_scene(self) -> bool:
        if self.scene_path is None:
            return self.save_scene_as()
        return self.write_scene(self.scene_path)

    def save_scene_as(self) -> bool:
        suggested = self.opened.with_suffix(".json").name if self.opened else "scene.json"
        path, _ = QFileDialog.getSaveFileName(self.window, "Save scene", suggested, "Scenes (*.json)")
        return bool(path) and self.write_scene(Path(path))

    def write_scene(self, path: Path) -> bool:
        if not self._write("Save scene", path, write_scene, self.stack.scene):
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

    # ---- latents ---------------------------------------------------------------------------------
    def copy_latent(self) -> None:
        latent = self.current_latent()
        if latent is not None:
            QGuiApplication.clipboard().setText(latent_as_text(latent))
            rows, columns = latent.shape
            self._status(f"Copied the W+ latent ({rows} × {columns})", 3000)

    def paste_latent(self) -> None:
        try:
            self._use_latent(latent_from_text(QGuiApplication.clipboard().text()), "clipboard",
                             "Paste latent")
        except (ValueError, KeyError, TypeError) as error:
            self.ask.error("Paste latent", f"The clipboard holds no latent ({error})")

    def _use_latent(self, array: np.ndarray, what: str, label: str) -> None:
        if self.model is not None:
            latent = latent_from_array(array, self.model.shape, what)
            self.stack.push(cmd.set_fields(label, w=latent))

    def load_latent_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Load latent", "", LATENT_FILTER)
        if path:
            self.load_latent(path)

    def load_latent(self, path: str | Path) -> None:
        path = Path(path)
        array = self._read("Load latent", path, read_latent)
        if array is None:
            return
        try:
            self._use_latent(array, path.name, f"Load latent {path.name}")
        except ValueError as error:  # names the file already
            self.ask.error("Load latent", str(error))

    def save_latent_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self.window, "Save latent", "latent.npy", "NumPy (*.npy)")
        if path:
            self.save_latent(path)

    def save_latent(self, path: str | Path) -> bool:
        latent = self.current_latent()
        return latent is not None and self._write("Save latent", Path(path), write_latent, latent)

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
        if not self._write("Save recipe", path, write_recipe, self.current_recipe(name)):
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
        recipe = self._read("Apply recipe", path, read_recipe, self.model_hash())
        if recipe is None:
            return False
        self.stack.push(cmd.apply_recipe(recipe, f"Apply recipe {recipe.name or path.stem}"))
        return True
