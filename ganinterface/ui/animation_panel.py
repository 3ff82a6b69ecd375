"""Interpolation and animation: keyframes (seeds or latents), lerp in W / slerp in Z, an edit's
strength following a curve (the talking-mouth loop), and preview playback in the window.

Frames are Scenes made by ``engine.animation``; preview renders them through the window's render
worker (newest wins, so a slow model drops frames instead of falling behind), and the export dialog
writes the same Scenes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLabel, QListWidget, QPushButton, QSlider, QSpinBox,
                               QVBoxLayout, QWidget)

from ganinterface.engine.animation import as_latent_keyframe, latent_keyframe
from ganinterface.engine.scene import Recipe, Scene
from ganinterface.export.userfiles import Keyframe

MODES = {"Lerp in W": "w", "Slerp in Z (seeds only)": "z", "Edit strength curve": "strength"}


class AnimationPanel(QWidget):
    preview_frame = Signal(object)  # a Scene to show (not a document change)
    preview_stopped = Signal()
    message = Signal(str)  # news for the status bar
    failed = Signal(str, str)  # title, one-line error for a dialog
    keyframes_changed = Signal()
    picture_chosen = Signal(str)  # a picture to project and add as a keyframe

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model: Any = None
        self._scene = Scene()
        self.keyframes: list[int | np.ndarray] = []
        self._cache_key: Any = None
        self._cache: list[Scene] = []
        self.list = QListWidget()
        self.list.setToolTip("Keyframes, in order")
        add_seed, add_latent = QPushButton("Add seed"), QPushButton("Add latent")
        add_file = QPushButton("Add file…")
        add_file.setToolTip("Add a saved W or W+ latent (.npz from `project`, or .npy) as a keyframe, "
                            "or a picture: it is projected first, the current scene left as it is")
        add_seed.setToolTip("Add the current seed as a keyframe")
        add_latent.setToolTip("Add the current W+ latent (after directions) as a keyframe")
        remove, clear = QPushButton("Remove"), QPushButton("Clear")
        self.mode = QComboBox()
        self.mode.addItems(list(MODES))
        self.mode.setToolTip("W: straight lines between mapped latents. Z: great circles between "
                             "seeds' z (then mapped). Strength: the current edits fade in and out "
                             "following the curve")
        self.frames_count = QSpinBox()
        self.frames_count.setRange(2, 2000)
        self.frames_count.setValue(24)
        self.loop = QCheckBox("Loop back to the first keyframe")
        self.easing = QComboBox()
        self.easing.addItems(["linear", "ease"])
        self.curve = QComboBox()
        self.curve.addItems(["talk", "ping-pong", "linear", "ease"])
        self.curve.setToolTip("talk: 0 → 1 → 0 like a mouth opening and closing")
        self.recipe: Recipe | None = None  # None: animate the current edits
        self.recipe_button = QPushButton("Current edits")
        self.recipe_button.setToolTip("What the strength curve animates: the current edits, or a "
                                      "recipe file (click to choose; choose nothing to go back)")
        self.cycles = QDoubleSpinBox()
        self.cycles.setRange(0.5, 20.0)
        self.cycles.setValue(2.0)
        self.fps = QSpinBox()
        self.fps.setRange(1, 60)
        self.fps.setValue(12)
        self.play = QPushButton("▶ Play")
        self.play.setCheckable(True)
        self.position = QSlider(Qt.Orientation.Horizontal)
        self.position.setToolTip("Scrub through the frames")
        self.status = QLabel("")

        keys = QHBoxLayout()
        for button in (add_seed, add_latent, add_file, remove, clear):
            keys.addWidget(button)
        form = QFormLayout()
        form.addRow("Mode", self.mode)
        form.addRow("Frames", self.frames_count)
        form.addRow("", self.loop)
        form.addRow("Easing", self.easing)
        form.addRow("Strength curve", self.curve)
        form.addRow("Animate", self.recipe_button)
        form.addRow("Cycles", self.cycles)
        form.addRow("Preview fps", self.fps)
        playback = QHBoxLayout()
        playback.addWidget(self.play)
        playback.addWidget(self.position, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(QLabel("Keyframes"))
        layout.addWidget(self.list, 1)
        layout.addLayout(keys)
        layout.addLayout(form)
        layout.addLayout(playback)
        layout.addWidget(self.status)

        self.timer = QTimer(self)
        self.timer.timeout.connect(self._tick)
        add_seed.clicked.connect(lambda: self.add_keyframe(self._scene.seed))
        add_latent.clicked.connect(self._add_latent)
        add_file.clicked.connect(self._add_file_dialog)
        remove.clicked.connect(self._remove)
        clear.clicked.connect(self._clear)
        self.play.toggled.connect(self._play_toggled)
        self.recipe_button.clicked.connect(self._choose_recipe)
        self.position.valueChanged.connect(self._scrub)
        for widget in (self.mode, self.easing, self.curve):
            widget.currentIndexChanged.connect(self._settings_changed)
        for widget in (self.frames_count, self.cycles):
            widget.valueChanged.connect(self._settings_changed)
        self.loop.toggled.connect(self._settings_changed)
        self.fps.valueChanged.connect(lambda v: self.timer.setInterval(int(1000 / v)))
        self._settings_changed()

    # ---- inputs ----------------------------------------------------------------------------------
    def set_model(self, model: Any) -> None:
        self.model = model
        self._clear()

    def show_scene(self, scene: Scene) -> None:
        self._scene = scene
        self._settings_changed()

    def add_keyframe(self, keyframe: Keyframe, name: str = "") -> None:
        """A seed, or a W / W+ latent (with detail maps or not) with ``name`` saying where it came
        from (a picture, a file)."""
        self.keyframes.append(keyframe)
        if isinstance(keyframe, int):
            label = f"seed {keyframe}"
        else:
            latent = as_latent_keyframe(keyframe)
            space = "W" if latent.w.ndim == 1 or len(latent.w) == 1 else "W+"
            maps = ", fine detail" if latent.detail else ""
            maps += ", noise" if latent.noise else ""
            label = f"{name or 'latent'} ({space}{maps})"
        self.list.addItem(f"{len(self.keyframes)}. {label}")
        self._settings_changed()
        self.keyframes_changed.emit()

    def set_keyframes(self, keyframes: Sequence[Keyframe]) -> None:
        """Replace the keyframes (a restored session's)."""
        self._clear()
        for keyframe in keyframes:
            self.add_keyframe(keyframe)

    def _add_latent(self) -> None:
        window = self.window()
        latent = window.current_latent() if hasattr(window, "current_latent") else None
        if latent is not None:
            name = window.documents.latent_name() if hasattr(window, "documents") else ""
            latent = np.asarray(latent, dtype=np.float32)
            scene = self._scene
            maps = (scene.detail_maps, scene.noise_maps) if scene is not None else (None, None)
            self.add_keyframe(latent_keyframe(latent, *maps), name or "current latent")

    def _add_file_dialog(self) -> None:
        from ganinterface.ui.documents import PICTURE_SUFFIXES

        pictures = " ".join("*" + suffix for suffix in PICTURE_SUFFIXES)
        path, _ = QFileDialog.getOpenFileName(
            self, "Add keyframe", "",
            f"Latents and pictures (*.npz *.npy {pictures});;Latents (*.npz *.npy);;Pictures ({pictures})")
        if not path:
            return
        if Path(path).suffix.lower() in PICTURE_SUFFIXES:
            self.picture_chosen.emit(path)
        else:
            self.add_latent_file(path)

    def add_projection(self, fields: dict[str, Any], name: str) -> None:
        """A projected picture (``Projection.scene_fields()``) as the next keyframe."""
        self.add_keyframe(latent_keyframe(fields["w"], fields["detail_maps"], fields["noise_maps"]), name)

    def add_latent_file(self, path: str) -> bool:
        from ganinterface.export.userfiles import UserFileError, read_latent_file

        if self.model is None:
            return False
        try:
            noise_shapes = self.model.renderer.generator.noise_shapes()
            latent = read_latent_file(path, self.model.shape, self.model.hash, noise_shapes)
        except UserFileError as error:
            self.failed.emit("Add keyframe", str(error))
            return False
        self.add_keyframe(latent_keyframe(latent.w, latent.detail, latent.noise),
                          latent.source or Path(path).name)
        return True

    def _choose_recipe(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Recipe to animate", "", "Recipes (*.json)")
        self.set_recipe(path or None)

    def set_recipe(self, path: str | None) -> bool:
        """Animate the recipe in ``path`` over the current scene (None: the current edits); one made
        for another model than the loaded one is refused, as Apply recipe refuses it."""
        from ganinterface.export.userfiles import UserFileError, read_recipe

        recipe = None
        if path:
            try:
                recipe = read_recipe(path, None if self.model is None else self.model.hash)
            except UserFileError as error:
                self.failed.emit("Recipe to animate", str(error))
                return False
        self.recipe = recipe
        self.recipe_button.setText(Path(path).name if recipe is not None else "Current edits")
        self._settings_changed()
        return True

    def _remove(self) -> None:
        row = self.list.currentRow()
        if row >= 0:
            del self.keyframes[row]
            labels = [self.list.item(i).text().split(". ", 1)[1] for i in range(self.list.count())]
            del labels[row]
            self.list.clear()
            self.list.addItems([f"{i + 1}. {text}" for i, text in enumerate(labels)])
            self._settings_changed()
            self.keyframes_changed.emit()

    def _clear(self) -> None:
        self.keyframes = []
        self.list.clear()
        self._settings_changed()
        self.keyframes_changed.emit()

    def _settings_changed(self, *_: object) -> None:
        mode = MODES[self.mode.currentText()]
        self.curve.setEnabled(mode == "strength")
        self.recipe_button.setEnabled(mode == "strength")
        self.cycles.setEnabled(mode == "strength")
        self.easing.setEnabled(mode != "strength")
        count = len(self.frames())
        self.position.setRange(0, max(count - 1, 0))
        if not count:
            self.status.setText("Add two keyframes, or choose “Edit strength curve” with edits in "
                                "the stack")

    # ---- frames ----------------------------------------------------------------------------------
    def frames(self) -> list[Scene]:
        """The animation's Scenes for the current settings ([] when it is not set up)."""
        if self.model is None:
            return []
        mode = MODES[self.mode.currentText()]
        key = (mode, self._scene, tuple(map(_keyframe_key, self.keyframes)),
               self.frames_count.value(), self.loop.isChecked(), self.easing.currentText(),
               self.curve.currentText(), self.cycles.value(),
               None if self.recipe is None else self.recipe.to_json())
        if key != self._cache_key:
            self._cache_key = key
            try:
                self._cache = self._make_frames(mode)
                if self._cache:
                    self.status.setText(f"{len(self._cache)} frames")
            except ValueError as error:  # AnimationError and shape problems: say what is wrong
                self._cache = []
                self.status.setText(str(error))
        return self._cache

    def _make_frames(self, mode: str) -> list[Scene]:
        from ganinterface.engine import animation

        base, count = self._scene, self.frames_count.value()
        loop, easing = self.loop.isChecked(), self.easing.currentText()
        if mode == "strength":
            recipe = self.recipe or Recipe(edits=base.edits)
            if not recipe.edits:
                return []
            base = base if self.recipe is not None else base.replace(edits=())
            return animation.recipe_strength(base, recipe, count,
                                             self.curve.currentText(), cycles=self.cycles.value())
        if len(self.keyframes) < 2:
            return []
        renderer = self.model.renderer
        if mode == "z":
            if not all(isinstance(k, int) for k in self.keyframes):
                raise ValueError("Slerp in Z needs seed keyframes (a latent has no z)")
            return animation.interpolate_z(base, self.keyframes, count, self.model.shape.z_dim,
                                           animation.z_mapper(renderer, base), loop=loop, easing=easing)
        latents = [renderer.base_ws(base.replace(seed=k, w=None)) if isinstance(k, int) else k
                   for k in self.keyframes]
        return animation.morph(base, latents, count, self.model.shape.num_ws,
                               stored_noise=renderer.stored_noise_maps(), loop=loop, easing=easing)

    # ---- preview ---------------------------------------------------------------------------------
    def _play_toggled(self, playing: bool) -> None:
        if playing and self.frames():
            self.play.setText("■ Stop")
            self.timer.start(int(1000 / self.fps.value()))
        else:
            self.stop()

    def _tick(self) -> None:
        frames = self.frames()
        if not frames:
            self.stop()
            return
        self.position.setValue((self.position.value() + 1) % len(frames))

    def _scrub(self, index: int) -> None:
        frames = self.frames()
        if 0 <= index < len(frames):
            self.preview_frame.emit(frames[index])
            self.status.setText(f"frame {index + 1} / {len(frames)}")

    def stop(self) -> None:
        self.timer.stop()
        if self.play.isChecked():
            self.play.blockSignals(True)
            self.play.setChecked(False)
            self.play.blockSignals(False)
        self.play.setText("▶ Play")
        self.preview_stopped.emit()


def _keyframe_key(keyframe: Keyframe) -> Any:
    """What a keyframe's frames depend on, comparable and cheap."""
    if isinstance(keyframe, int):
        return keyframe
    latent = as_latent_keyframe(keyframe)
    return (latent.w.tobytes(),
            *(tuple((name, value.tobytes()) for name, value in sorted((maps or {}).items()))
              for maps in (latent.detail, latent.noise)))
