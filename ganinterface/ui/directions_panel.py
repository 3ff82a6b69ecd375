"""Latent directions as sliders: loaded from files, or computed (tagged seeds, principal directions).

The sliders show the Scene's DirectionEdits and StyleChannelEdits (style-space directions), nothing
else: adding a direction adds an edit of amount
0, moving a slider changes that edit's amount (merged into one undo step per drag), so the Scene
stays the single source of truth and saving a scene keeps the directions with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (QFileDialog, QGridLayout, QGroupBox, QHBoxLayout, QLabel,
                               QPushButton, QScrollArea, QSpinBox, QVBoxLayout, QWidget)
from superqt import QLabeledDoubleSlider

from ganinterface.engine import commands as cmd
from ganinterface.engine.kinds import DirectionEdit, StyleChannelEdit, kind_of
from ganinterface.engine.scene import Scene
from ganinterface.engine.scheduler import Outcome
from ganinterface.ui.shipped import ShippedMenuButton
from ganinterface.ui.workers import BackgroundTask

DIRECTION_FILTER = "Directions (*.npy *.json *.pt *.pth *.csv *.txt);;All files (*)"
SliderEdit = DirectionEdit | StyleChannelEdit
AMOUNT_RANGE = 5.0


class DirectionRow(QWidget):
    """One direction edit: its amount, its w range (a style-space one: which styles it offsets),
    remove."""

    def __init__(self, index: int, edit: SliderEdit, num_ws: int, panel: "DirectionsPanel") -> None:
        super().__init__()
        self.index = index
        self.name = QLabel(edit.name or f"direction {index + 1}")
        self.name.setToolTip(edit.source or edit.name)
        self.amount = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.amount.setRange(-AMOUNT_RANGE, AMOUNT_RANGE)
        self.amount.setDecimals(2)
        self.amount.setToolTip("How far to move along the direction")
        self.first, self.last = QSpinBox(), QSpinBox()
        for spin, tip in ((self.first, "First w (layer input) the direction moves"),
                          (self.last, "Last w it moves")):
            spin.setRange(0, max(num_ws - 1, 0))
            spin.setToolTip(tip)
        remove = QPushButton("✕")
        remove.setFixedWidth(26)
        remove.setToolTip("Remove this direction")
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 2, 0, 2)
        grid.addWidget(self.name, 0, 0, 1, 4)
        grid.addWidget(remove, 0, 4)
        grid.addWidget(self.amount, 1, 0, 1, 5)
        if isinstance(edit, StyleChannelEdit):
            channels = QLabel(kind_of(edit).describe(edit).split("  ", 1)[1])
            channels.setWordWrap(True)  # a two-sided direction names both sides' layers
            grid.addWidget(channels, 2, 0, 1, 5)
        else:
            grid.addWidget(QLabel("ws"), 2, 0)
            grid.addWidget(self.first, 2, 1)
            grid.addWidget(QLabel("to"), 2, 2)
            grid.addWidget(self.last, 2, 3)
        self.show_edit(edit, num_ws)
        self.amount.valueChanged.connect(lambda v: panel.amount_changed(self.index, v))
        self.amount.sliderReleased.connect(panel.drag_finished.emit)
        self.first.valueChanged.connect(lambda _v: panel.range_changed(self.index, self))
        self.last.valueChanged.connect(lambda _v: panel.range_changed(self.index, self))
        remove.clicked.connect(lambda: panel.command.emit(cmd.remove_edit(self.index, "Remove direction")))

    def show_edit(self, edit: SliderEdit, num_ws: int) -> None:
        for widget in (self.amount, self.first, self.last):
            widget.blockSignals(True)
        if abs(self.amount.value() - edit.amount) > 1e-9:
            self.amount.setValue(edit.amount)
        if isinstance(edit, DirectionEdit):
            self.first.setValue(edit.first)
            self.last.setValue(num_ws - 1 if edit.last is None else edit.last)
        for widget in (self.amount, self.first, self.last):
            widget.blockSignals(False)


class DirectionsPanel(QWidget):
    command = Signal(object)
    drag_finished = Signal()
    message = Signal(str)  # news for the status bar
    failed = Signal(str, str)  # title, one-line error for a dialog

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model: Any = None
        self._scene = Scene()
        self._rows: list[DirectionRow] = []
        self._row_key: tuple = ()
        self.positive: list[int] = []
        self.negative: list[int] = []

        load = QPushButton("Load direction…")
        load.setToolTip("A direction file: .npy (with its .json), .pt or .csv, or a style-space "
                        "direction's .json")
        self.shipped = ShippedMenuButton("Built-in",
                                         "Directions shipped with the built-in portrait model")
        self.principal = QPushButton("Principal directions of W")
        self.principal.setToolTip("GANSpace-style: PCA of 2000 mapped latents; adds the top 5")
        self.sefa = QPushButton("Closed-form (SeFa)")
        self.sefa.setToolTip("Eigenvectors of the modulation weights; adds the top 5")
        tag_plus, tag_minus = QPushButton("Tag seed +"), QPushButton("Tag seed −")
        tag_plus.setToolTip("Current seed has the attribute")
        tag_minus.setToolTip("Current seed lacks the attribute")
        self.mean_diff = QPushButton("Mean difference")
        self.mean_diff.setToolTip("Direction from the − seeds' mean W to the + seeds' mean W")
        clear_tags = QPushButton("Clear tags")
        self.tags = QLabel("")
        self.tags.setWordWrap(True)

        compute = QGroupBox("Add directions")
        compute_layout = QVBoxLayout(compute)
        for buttons in ((load, self.shipped), (self.principal, self.sefa), (tag_plus, tag_minus),
                        (self.mean_diff, clear_tags)):
            row = QHBoxLayout()
            for button in buttons:
                row.addWidget(button)
            compute_layout.addLayout(row)
        compute_layout.addWidget(self.tags)
        self.rows_widget = QWidget()
        self.rows_layout = QVBoxLayout(self.rows_widget)
        self.rows_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.rows_widget)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(compute)
        layout.addWidget(scroll, 1)

        self.task = BackgroundTask(lambda job: job(), "ganinterface-directions", self)
        self.task.finished.connect(self._computed)
        load.clicked.connect(self.load_dialog)
        self.principal.clicked.connect(lambda: self.compute("principal"))
        self.sefa.clicked.connect(lambda: self.compute("sefa"))
        tag_plus.clicked.connect(lambda: self.tag(+1))
        tag_minus.clicked.connect(lambda: self.tag(-1))
        self.mean_diff.clicked.connect(lambda: self.compute("mean"))
        clear_tags.clicked.connect(self.clear_tags)
        self.clear_tags()

    # ---- scene -> rows ---------------------------------------------------------------------------
    def set_model(self, model: Any) -> None:
        self.model = model
        self._row_key = ()
        self.clear_tags()

    def set_shipped(self, paths: list) -> None:
        self.shipped.set_files(paths, self.load)

    def show_scene(self, scene: Scene) -> None:
        self._scene = scene
        num_ws = self.model.shape.num_ws if self.model else 1
        indexed = [(i, e) for i, e in enumerate(scene.edits)
                   if isinstance(e, (DirectionEdit, StyleChannelEdit))]
        key = tuple((i, e.name, e.source) for i, e in indexed)
        if key != self._row_key:
            for row in self._rows:  # out of sight now: deleteLater waits for the event loop
                self.rows_layout.removeWidget(row)
                row.hide()
                row.deleteLater()
            self._rows = [DirectionRow(i, e, num_ws, self) for i, e in indexed]
            for position, row in enumerate(self._rows):
                self.rows_layout.insertWidget(position, row)
            self._row_key = key
        else:
            for row, (_, edit) in zip(self._rows, indexed):
                row.show_edit(edit, num_ws)

    def amount_changed(self, index: int, value: float) -> None:
        self.command.emit(cmd.update_edit(index, "Direction amount", merge_key=("direction", index),
                                          amount=round(float(value), 4)))

    def range_changed(self, index: int, row: DirectionRow) -> None:
        num_ws = self.model.shape.num_ws if self.model else 1
        first, last = row.first.value(), row.last.value()
        if last < first:
            return
        self.command.emit(cmd.update_edit(index, "Direction range", first=first,
                                          last=None if last == num_ws - 1 else last))

    # ---- adding ----------------------------------------------------------------------------------
    def add_direction(self, vector: np.ndarray, name: str, source: str = "") -> None:
        edit = DirectionEdit(vector, 0.0, name=name, source=source)
        self.command.emit(cmd.add_edit(edit, f"Add direction {name}"))

    def load_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load direction", "", DIRECTION_FILTER)
        if path:
            self.load(path)

    def load(self, path: str) -> bool:
        from ganinterface.export.userfiles import UserFileError, read_direction

        if self.model is None:
            return False
        try:
            direction = read_direction(path, self.model.renderer.generator, self.model.hash)
        except UserFileError as error:
            self.failed.emit("Load direction", str(error))
            return False
        self.command.emit(cmd.add_edit(direction.to_edit(0.0, str(path)), f"Add direction {direction.name}"))
        return True

    def tag(self, sign: int) -> None:
        seed = self._scene.seed
        (self.positive if sign > 0 else self.negative).append(seed)
        self._show_tags()

    def clear_tags(self) -> None:
        self.positive, self.negative = [], []
        self._show_tags()

    def _show_tags(self) -> None:
        plus = ", ".join(map(str, self.positive)) or "none"
        minus = ", ".join(map(str, self.negative)) or "none"
        self.tags.setText(f"+ seeds: {plus}    − seeds: {minus}")
        self.mean_diff.setEnabled(bool(self.positive and self.negative))

    def compute(self, kind: str) -> None:
        if self.model is None:
            return
        self.task.start(self._job(kind))
        self.message.emit("Computing directions…")

    def _job(self, kind: str) -> Callable[[], list[tuple[np.ndarray, str, str]]]:
        from ganinterface.engine import directions

        renderer, scene = self.model.renderer, self._scene
        positive, negative = list(self.positive), list(self.negative)

        def mean() -> list[tuple[np.ndarray, str, str]]:
            def ws(seeds: list[int]) -> np.ndarray:
                return np.stack([renderer.base_ws(scene.replace(seed=s, w=None, edits=()))[0]
                                 for s in seeds])
            vector = directions.mean_difference(ws(positive), ws(negative))
            return [(vector, f"tagged +{len(positive)}/−{len(negative)}",
                     f"mean difference of seeds +{positive} −{negative}")]

        def principal() -> list[tuple[np.ndarray, str, str]]:
            vectors, stds = directions.ganspace_directions(renderer.generator, 5, samples=2000)
            return [(v * s, f"PC{k + 1}", "principal direction of W (1 = one std dev)")
                    for k, (v, s) in enumerate(zip(vectors, stds))]

        def sefa() -> list[tuple[np.ndarray, str, str]]:
            vectors, _ = directions.sefa_directions(renderer.generator, 5)
            return [(v * 3.0, f"SeFa {k + 1}", "closed-form factorisation (scaled ×3)")
                    for k, v in enumerate(vectors)]

        return {"mean": mean, "principal": principal, "sefa": sefa}[kind]

    @Slot(object, object)
    def _computed(self, _job: object, outcome: Outcome) -> None:
        if not outcome.ok:
            self.failed.emit("Compute directions", outcome.error)
            return
        for vector, name, source in outcome.value:
            self.add_direction(vector, name, source)
        self.message.emit(f"Added {len(outcome.value)} direction(s)")

    def shutdown(self) -> None:
        self.task.shutdown()
