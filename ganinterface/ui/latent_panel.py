"""Seed, class, truncation and noise: where the latent comes from, and what it honestly is (W or W+)."""

from __future__ import annotations

import dataclasses
import random

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QFormLayout, QHBoxLayout, QLabel, QPushButton, QSpinBox,
                               QVBoxLayout, QWidget)
from superqt import QLabeledDoubleSlider

from ganinterface.engine import commands as cmd
from ganinterface.engine.kinds import kind_of
from ganinterface.engine.scene import Scene

MAX_SEED = 2**31 - 1


@dataclasses.dataclass(frozen=True)
class ModelShape:
    """What the panels need to know about the loaded generator."""

    name: str
    z_dim: int
    w_dim: int
    num_ws: int
    c_dim: int
    layers: tuple  # tuple[LayerInfo, ...]
    height: int
    width: int


def describe_latent(scene: Scene, shape: ModelShape | None) -> str:
    """One honest sentence about the latent: W (one vector for every layer) or W+ (one per layer),
    and a projection's detail map."""
    num_ws = shape.num_ws if shape else "?"
    ranged = [e for e in scene.edits if e.enabled and kind_of(e).makes_w_plus(e)]
    if scene.w is None:
        text = f"seed {scene.seed} → z → W: one vector used by all {num_ws} layers"
    elif scene.w.ndim == 1:
        text = f"given W ({scene.w.shape[0]}-d): one vector used by all {num_ws} layers"
    else:
        text = f"given W+ ({scene.w.shape[0]} × {scene.w.shape[1]}): one vector per layer"
    if scene.detail_maps:
        text += f"; a detail map on {', '.join(sorted(scene.detail_maps))} keeps the picture's fine detail"
    if ranged:
        text += f"; {len(ranged)} edit(s) on a layer range make it W+"
    return text


class LatentPanel(QWidget):
    command = Signal(object)  # engine.commands.Command
    drag_finished = Signal()
    copy_requested = Signal()
    paste_requested = Signal()
    load_requested = Signal()
    save_requested = Signal()
    sample_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._updating = False
        self.seed = QSpinBox()
        self.seed.setRange(0, MAX_SEED)
        self.seed.setToolTip("Seed of the random z (drawn as NVlabs gen_images.py does)")
        self.seed.setKeyboardTracking(False)
        previous, following, lucky = QPushButton("◀"), QPushButton("▶"), QPushButton("Random")
        previous.setToolTip("Previous seed (Page Up)")
        following.setToolTip("Next seed (Page Down)")
        lucky.setToolTip("A random seed")
        for button in (previous, following):
            button.setFixedWidth(30)
        previous.clicked.connect(lambda: self.seed.setValue(max(self.seed.value() - 1, 0)))
        following.clicked.connect(lambda: self.seed.setValue(min(self.seed.value() + 1, MAX_SEED)))
        lucky.clicked.connect(lambda: self.seed.setValue(random.randrange(0, 100_000)))
        self.previous_button, self.next_button = previous, following
        seed_row = QHBoxLayout()
        seed_row.addWidget(previous)
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(following)
        seed_row.addWidget(lucky)

        self.class_index = QSpinBox()
        self.class_index.setRange(-1, 0)
        self.class_index.setSpecialValueText("none")
        self.class_index.setToolTip("Class label for conditional models")

        self.psi = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.psi.setRange(0.0, 1.5)
        self.psi.setDecimals(2)
        self.psi.setSingleStep(0.05)
        self.psi.setValue(1.0)
        self.psi.setToolTip("Truncation ψ: pull W towards the average W (1 = none, 0 = the average)")

        self.cutoff = QSpinBox()
        self.cutoff.setRange(0, 64)
        self.cutoff.setSpecialValueText("all layers")
        self.cutoff.setPrefix("first ")
        self.cutoff.setSuffix(" ws")
        self.cutoff.setToolTip("Truncate only the first k w vectors (the coarse layers); "
                               "'all layers' truncates every one, as NVlabs' default")

        self.noise_mode = QComboBox()
        self.noise_mode.addItems(["const", "random", "none"])
        self.noise_mode.setToolTip("Per-pixel noise: the model's stored constants, a random draw "
                                   "(from the noise seed), or none")
        self.noise_seed = QSpinBox()
        self.noise_seed.setRange(0, MAX_SEED)
        self.noise_seed.setToolTip("Seed of the random noise (noise mode 'random')")

        self.latent_label = QLabel()
        self.latent_label.setWordWrap(True)
        self.latent_label.setStyleSheet("color: palette(mid);")
        self.use_seed = QPushButton("Back to seed")
        self.use_seed.setToolTip("Forget the given W/W+ (and its noise maps) and use the seed again")
        buttons = QHBoxLayout()
        for text, tip, signal in (("Copy", "Copy the W+ latent to the clipboard", self.copy_requested),
                                  ("Paste", "Use a latent from the clipboard", self.paste_requested),
                                  ("Load…", "Load a latent file (.npz from a projection, or a W/W+ .npy)", self.load_requested),
                                  ("Save…", "Save the current W+ latent (.npy)", self.save_requested),
                                  ("Sample like…", "A new portrait like the chosen latent files "
                                   "(projected pictures): drawn from their Gaussian in W",
                                   self.sample_requested)):
            button = QPushButton(text)
            button.setToolTip(tip)
            button.clicked.connect(signal.emit)
            buttons.addWidget(button)

        form = QFormLayout()
        form.addRow("Seed", seed_row)
        form.addRow("Class", self.class_index)
        form.addRow("Truncation ψ", self.psi)
        form.addRow("Truncate", self.cutoff)
        noise_row = QHBoxLayout()
        noise_row.addWidget(self.noise_mode, 1)
        noise_row.addWidget(QLabel("seed"))
        noise_row.addWidget(self.noise_seed, 1)
        form.addRow("Noise", noise_row)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        latent_row = QHBoxLayout()
        latent_row.addWidget(self.latent_label, 1)
        latent_row.addWidget(self.use_seed)
        layout.addLayout(latent_row)
        layout.addLayout(buttons)
        layout.addStretch(1)

        self.seed.valueChanged.connect(self._seed_changed)
        self.class_index.valueChanged.connect(self._class_changed)
        self.psi.valueChanged.connect(self._psi_changed)
        self.psi.sliderReleased.connect(self.drag_finished.emit)
        self.cutoff.valueChanged.connect(self._cutoff_changed)
        self.noise_mode.currentTextChanged.connect(self._noise_changed)
        self.noise_seed.valueChanged.connect(self._noise_changed)
        self.use_seed.clicked.connect(lambda: self.command.emit(
            cmd.set_fields("Use seed", w=None, noise_maps=None, detail_maps=None)))

    # ---- scene -> widgets ------------------------------------------------------------------------
    def show_scene(self, scene: Scene, shape: ModelShape | None) -> None:
        self._updating = True
        try:
            self.seed.setValue(scene.seed)
            if shape is not None:  # conditional models need a class: no "none" for them
                self.class_index.setRange(0 if shape.c_dim else -1, max(shape.c_dim - 1, -1))
                self.class_index.setEnabled(shape.c_dim > 0)
            self.class_index.setValue(-1 if scene.class_index is None else scene.class_index)
            if abs(self.psi.value() - scene.truncation_psi) > 1e-9:
                self.psi.setValue(scene.truncation_psi)
            if shape is not None:
                self.cutoff.setRange(0, shape.num_ws)
            self.cutoff.setValue(scene.truncation_cutoff or 0)
            self.cutoff.setEnabled(scene.w is None)
            self.noise_mode.setCurrentText(scene.noise_mode)
            self.noise_seed.setValue(scene.noise_seed)
            self.noise_seed.setEnabled(scene.noise_mode == "random")
            self.seed.setEnabled(scene.w is None)
            self.psi.setEnabled(scene.w is None)
            self.use_seed.setVisible(scene.w is not None)
            self.latent_label.setText("Latent: " + describe_latent(scene, shape))
        finally:
            self._updating = False

    # ---- widgets -> commands ---------------------------------------------------------------------
    def _seed_changed(self, seed: int) -> None:
        if not self._updating:
            self.command.emit(cmd.set_fields(f"Seed {seed}", seed=seed))

    def _class_changed(self, value: int) -> None:
        if not self._updating:
            self.command.emit(cmd.set_fields("Class", class_index=None if value < 0 else value))

    def _psi_changed(self, psi: float) -> None:
        if not self._updating:
            self.command.emit(cmd.set_fields(f"Truncation ψ {psi:.2f}", merge_key="psi",
                                             truncation_psi=round(float(psi), 4)))

    def _cutoff_changed(self, value: int) -> None:
        if not self._updating:
            self.command.emit(cmd.set_fields("Truncation cutoff", truncation_cutoff=value or None))

    def _noise_changed(self, *_: object) -> None:
        if not self._updating:
            self.command.emit(cmd.set_fields("Noise", noise_mode=self.noise_mode.currentText(),
                                             noise_seed=self.noise_seed.value()))
