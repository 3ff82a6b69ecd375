"""The edit stack: every edit of the Scene, in order; hide, re-weight, re-target, reorder, delete.

A recipe's per-channel edits (consecutive edits sharing a name) are one row: hidden, scaled,
renamed, moved and deleted together.  Each control emits a Command; the window pushes it on the
CommandStack, so all of it can be undone.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QDoubleSpinBox, QFormLayout,
                               QHBoxLayout, QInputDialog, QLineEdit, QListWidget, QListWidgetItem,
                               QMenu, QPushButton, QVBoxLayout, QWidget)

from ganinterface.engine import commands as cmd
from ganinterface.engine.kinds import Edit, EditKind, kind_of
from ganinterface.engine.kinds.feature import format_channels, parse_channels
from ganinterface.engine.scene import Scene
from ganinterface.ui.shipped import ShippedMenuButton


def describe_group(edits: tuple[Edit, ...]) -> str:
    """One row's text: the edit itself, or a recipe's run of same-named edits summarised."""
    if len(edits) == 1:
        return describe_edit(edits[0])
    layers = list(dict.fromkeys(kind_of(e).layer(e) or e.kind for e in edits))
    # a fill spans every layer from one on: name the first and the last, not all of them
    where = ", ".join(layers) if len(layers) <= 3 else f"{layers[0]} … {layers[-1]} ({len(layers)} layers)"
    marks = "".join(f"  {mark}" for mark, _ in _marks(edits))
    return f"“{edits[0].name}”  {len(edits)} edits on {where}{marks}"


def describe_edit(edit: Edit) -> str:
    return kind_of(edit).describe(edit)


def _marks(edits: tuple[Edit, ...]) -> list[tuple[str, str]]:
    """The marks a row of these edits carries, each with what it means."""
    marks = []
    if any(kind_of(e).anchor(e) is not None for e in edits):
        marks.append(("⚓", "follows its feature onto each portrait"))
    if any(kind_of(e).keeps_rest(e) for e in edits):
        marks.append(("▣", "changes only its region: the rest of the picture is kept"))
    return marks


def _legend(edits: tuple[Edit, ...]) -> str:
    """What the marks on a row mean, for its tooltip."""
    return "".join(f"\n{mark} {meaning}" for mark, meaning in _marks(edits))


def _strength_tip(kind: EditKind | None, several: bool) -> str:
    if several:
        return "Scale every edit of this recipe (1 = as it is now)"
    return kind.strength_tip if kind is not None else EditKind.strength_tip


class EditsPanel(QWidget):
    command = Signal(object)
    drag_finished = Signal()
    save_recipe_requested = Signal()
    apply_recipe_requested = Signal()
    apply_to_seeds_requested = Signal()
    style_mix_requested = Signal(int, int)  # seed, first w index
    style_mix_file_requested = Signal(int)  # first w index; the window asks for the latent file
    fill_file_requested = Signal(int)  # the selected resample's edit index; likewise
    recipe_file_chosen = Signal(str)  # a shipped recipe to apply

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._scene = Scene()
        self._groups: list[range] = []  # the edits each row stands for
        self._scale = 1.0  # a group row's strength: a factor on its amounts since it was selected
        self._scaled: tuple[range, tuple[Edit, ...]] | None = None  # a group as this panel scaled it
        self._layer_channels: dict[str, int] = {}
        self._num_ws = 1
        self._updating = False
        self.list = QListWidget()
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setToolTip("Edits are applied top to bottom. Untick to hide one.")
        self.name = QLineEdit()
        self.name.setPlaceholderText("name this edit (shown in recipes)")
        self.amount = QDoubleSpinBox()
        self.amount.setRange(-100.0, 100.0)
        self.amount.setSingleStep(0.25)
        self.amount.setDecimals(2)
        self.amount.setToolTip("Strength of the selected edit (negative subtracts)")
        self.channels = QLineEdit()
        self.channels.setPlaceholderText("e.g. 3, 17, 40-42")
        self.channels.setToolTip("Re-target the selected paint edit to other channels")
        self.fill_scale = QDoubleSpinBox()
        self.fill_scale.setRange(0.05, 4.0)
        self.fill_scale.setSingleStep(0.05)
        self.fill_scale.setDecimals(2)
        self.fill_scale.setPrefix("×")
        self.fill_scale.setToolTip("Where a fill copies from: each point takes the features at this "
                                   "multiple of its distance from the fill's centre (above 1: from "
                                   "around the region; below 1: from nearer its centre)")
        self.keep_rest = QCheckBox("Keep the rest of the picture")
        self.keep_rest.setToolTip("Change the picture only inside the edit's region (feathered a "
                                  "little): whatever it would change elsewhere stays as it was")
        self.up, self.down = QPushButton("Up"), QPushButton("Down")
        self.delete = QPushButton("Delete")
        self.delete.setToolTip("Delete the selected edit (Del)")
        self.new_fill = QPushButton("New fill")
        self.new_fill.setToolTip("Resample the selected region from another random seed")
        self.fill_from_file = QPushButton("Fill from latent…")
        self.fill_from_file.setToolTip("Take the selected region from a latent file (a projected "
                                       "picture's .npz, or .npy)")
        self.style_mix = QPushButton("Style mix…")
        self.style_mix.setToolTip("Take styles (coarse rows: shape and identity; fine rows: "
                                  "colours, details) from another seed or a latent file")
        style_sources = QMenu(self.style_mix)
        style_sources.addAction("From a seed…", self._ask_style_mix)
        style_sources.addAction("From a latent file…", self._ask_style_mix_file)
        self.style_mix.setMenu(style_sources)
        self.save_recipe = QPushButton("Save recipe…")
        self.save_recipe.setToolTip("Save all edits (without the latent) as a recipe JSON")
        self.apply_recipe = QPushButton("Apply recipe…")
        self.apply_recipe.setToolTip("Add a recipe's edits to this portrait")
        self.shipped = ShippedMenuButton("Built-in recipes",
                                         "Recipes shipped with the built-in portrait model")
        self.apply_seeds = QPushButton("Apply to seeds…")
        self.apply_seeds.setToolTip("Render these edits on a list or range of seeds into a folder")

        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("Strength", self.amount)
        form.addRow("Channels", self.channels)
        form.addRow("Fill from", self.fill_scale)
        form.addRow("", self.keep_rest)
        order = QHBoxLayout()
        for button in (self.up, self.down, self.delete):
            order.addWidget(button)
        more = QHBoxLayout()
        for button in (self.new_fill, self.fill_from_file, self.style_mix):
            more.addWidget(button)
        recipes = QHBoxLayout()
        for button in (self.save_recipe, self.apply_recipe):
            recipes.addWidget(button)
        batch = QHBoxLayout()
        batch.addWidget(self.apply_seeds)
        batch.addWidget(self.shipped)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.list, 1)
        layout.addLayout(form)
        layout.addLayout(order)
        layout.addLayout(more)
        layout.addLayout(recipes)
        layout.addLayout(batch)

        self.list.itemChanged.connect(self._item_toggled)
        self.list.currentRowChanged.connect(self._row_clicked)
        self.amount.valueChanged.connect(self._amount_changed)
        self.amount.editingFinished.connect(self.drag_finished.emit)
        self.channels.editingFinished.connect(self._channels_typed)
        self.fill_scale.valueChanged.connect(self._fill_scale_changed)
        self.fill_scale.editingFinished.connect(self.drag_finished.emit)
        self.name.editingFinished.connect(self._name_typed)
        self.keep_rest.toggled.connect(self._keep_rest_toggled)
        self.up.clicked.connect(lambda: self._move(-1))
        self.down.clicked.connect(lambda: self._move(+1))
        self.delete.clicked.connect(self._delete)
        self.new_fill.clicked.connect(self._new_fill)
        self.fill_from_file.clicked.connect(self._fill_from_file)
        self.save_recipe.clicked.connect(self.save_recipe_requested.emit)
        self.apply_recipe.clicked.connect(self.apply_recipe_requested.emit)
        self.apply_seeds.clicked.connect(self.apply_to_seeds_requested.emit)
        self._row_selected(-1)

    def set_shipped_recipes(self, paths: list) -> None:
        self.shipped.set_files(paths, self.recipe_file_chosen.emit)

    def set_model_shape(self, shape: object) -> None:
        self._layer_channels = {layer.name: layer.channels for layer in shape.layers}
        self._num_ws = shape.num_ws

    def show_scene(self, scene: Scene) -> None:
        self._updating = True
        try:
            row = self.list.currentRow()
            self._scene = scene
            self._groups = cmd.edit_groups(scene.edits)
            self.list.clear()
            for index, group in enumerate(self._groups):
                edits = scene.edits[group.start:group.stop]
                item = QListWidgetItem(f"{index + 1}. {describe_group(edits)}")
                item.setToolTip("\n".join(describe_edit(edit) for edit in edits[:40])
                                + (f"\n… {len(edits) - 40} more" if len(edits) > 40 else "")
                                + _legend(edits))
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                shown = sum(edit.enabled for edit in edits)
                item.setCheckState(Qt.CheckState.Checked if shown == len(edits) else
                                   Qt.CheckState.Unchecked if shown == 0 else
                                   Qt.CheckState.PartiallyChecked)
                self.list.addItem(item)
            if self._groups:
                self.list.setCurrentRow(min(max(row, 0), len(self._groups) - 1))
            # the group this panel just scaled, unchanged since (no undo): its factor stays shown
            group = self._group(self.list.currentRow())
            keep = (self._scaled is not None and group == self._scaled[0]
                    and scene.edits[group.start:group.stop] == self._scaled[1])
            self._row_selected(self.list.currentRow(), keep_scale=keep)
        finally:
            self._updating = False
        for button in (self.save_recipe, self.apply_seeds):
            button.setEnabled(bool(scene.edits))

    def _group(self, row: int) -> range | None:
        return self._groups[row] if 0 <= row < len(self._groups) else None

    def _row_clicked(self, row: int) -> None:
        if not self._updating:  # show_scene selects its row itself, once the list is rebuilt
            self._row_selected(row)

    def _row_selected(self, row: int, keep_scale: bool = False) -> None:
        group = self._group(row)
        edit = self._scene.edits[group.start] if group is not None else None
        kind = kind_of(edit) if edit is not None else None
        several = group is not None and len(group) > 1
        was_updating, self._updating = self._updating, True
        try:
            has_amount = kind is not None and kind.has_strength
            self.amount.setEnabled(has_amount)
            # a group's amounts differ per channel: its strength is a factor, 1 when selected
            self.amount.setPrefix("×" if several else "")
            self.amount.setToolTip(_strength_tip(kind, several))
            if not keep_scale:
                self._scale, self._scaled = 1.0, None
            if has_amount:
                self.amount.setValue(self._scale if several else edit.amount)
            else:
                self.amount.clear()  # no number left over from the edit selected before
            self.name.setEnabled(edit is not None)
            self.name.setText(edit.name if edit is not None else "")
            retargets = kind is not None and kind.has_channels and not several
            self.channels.setEnabled(retargets)
            self.channels.setText(format_channels(edit.channels) if retargets else "")
            fills = kind is not None and kind.has_fill_scale and not several
            self.fill_scale.setEnabled(fills)
            self.fill_scale.setValue(edit.scale if fills else 1.0)
            keepers = [] if group is None else [e for e in self._scene.edits[group.start:group.stop]
                                                 if kind_of(e).can_keep_rest]
            self.keep_rest.setEnabled(bool(keepers))
            self.keep_rest.setChecked(bool(keepers) and all(e.keep_rest for e in keepers))
            for button in (self.up, self.down, self.delete):
                button.setEnabled(edit is not None)
            self.new_fill.setEnabled(kind is not None and kind.redraws_seed)
            self.fill_from_file.setEnabled(self.new_fill.isEnabled())
        finally:
            self._updating = was_updating

    def _item_toggled(self, item: QListWidgetItem) -> None:
        group = self._group(self.list.row(item))
        if self._updating or group is None:
            return
        enabled = item.checkState() != Qt.CheckState.Unchecked
        label = "Show edit" if enabled else "Hide edit"
        self.command.emit(cmd.update_edits(group, label, enabled=enabled))

    def _amount_changed(self, value: float) -> None:
        group = self._group(self.list.currentRow())
        if self._updating or group is None:
            return
        if len(group) == 1:
            self.command.emit(cmd.update_edit(group.start, "Edit strength",
                                              merge_key=("amount", group.start), amount=float(value)))
        elif value != 0.0:  # a factor of 0 could not be scaled back: hide the recipe instead
            factor, self._scale = value / self._scale, value
            scaled = cmd.scale_edits(group, factor, "Recipe strength", merge_key=("scale", group.start))
            self._scaled = (group, scaled.apply(self._scene).edits[group.start:group.stop])
            self.command.emit(scaled)

    def _fill_scale_changed(self, value: float) -> None:
        group = self._group(self.list.currentRow())
        if (self._updating or group is None or len(group) > 1
                or not kind_of(self._scene.edits[group.start]).has_fill_scale):
            return
        self.command.emit(cmd.update_edit(group.start, "Fill scale",
                                          merge_key=("fill_scale", group.start), scale=float(value)))

    def _keep_rest_toggled(self, checked: bool) -> None:
        group = self._group(self.list.currentRow())
        if not self._updating and group is not None:
            self.command.emit(cmd.keep_rest(group, checked))

    def _name_typed(self) -> None:
        group = self._group(self.list.currentRow())
        name = self.name.text().strip()
        if not self._updating and group is not None and name != self._scene.edits[group.start].name:
            self.command.emit(cmd.update_edits(group, "Rename edit", name=name))

    def _channels_typed(self) -> None:
        group = self._group(self.list.currentRow())
        if (self._updating or group is None or len(group) > 1
                or not kind_of(self._scene.edits[group.start]).has_channels):
            return
        row = group.start
        edit = self._scene.edits[row]
        try:
            channels = parse_channels(self.channels.text(), self._layer_channels.get(edit.layer, 1 << 16))
        except ValueError as error:
            self.channels.setToolTip(str(error))
            self.channels.setStyleSheet("border: 1px solid #d04040;")
            return
        self.channels.setStyleSheet("")
        if channels and channels != edit.channels:
            self.command.emit(cmd.retarget_edit(row, channels))

    def _move(self, step: int) -> None:
        row = self.list.currentRow()
        group, neighbour = self._group(row), self._group(row + step)
        if group is None or neighbour is None or row + step < 0:
            return
        # past the neighbouring row, whose edits may be a group too
        new_start = neighbour.start if step < 0 else group.start + len(neighbour)
        self.command.emit(cmd.move_edits(group, new_start))
        self.list.setCurrentRow(row + step)

    def _new_fill(self) -> None:
        import random

        group = self._group(self.list.currentRow())
        if group is not None and kind_of(self._scene.edits[group.start]).redraws_seed:
            self.command.emit(cmd.update_edit(group.start, "New fill", seed=random.randrange(100_000),
                                              w=None, source=""))

    def _fill_from_file(self) -> None:
        group = self._group(self.list.currentRow())
        if group is not None and kind_of(self._scene.edits[group.start]).redraws_seed:
            self.fill_file_requested.emit(group.start)

    def _ask_style_mix(self) -> None:
        seed, ok = QInputDialog.getInt(self, "Style mix", "Take styles from seed:",
                                       self._scene.seed + 1, 0, 2**31 - 1)
        first = self._ask_first_row() if ok else None
        if first is not None:
            self.style_mix_requested.emit(seed, first)

    def _ask_style_mix_file(self) -> None:
        first = self._ask_first_row()
        if first is not None:
            self.style_mix_file_requested.emit(first)

    def _ask_first_row(self) -> int | None:
        first, ok = QInputDialog.getInt(self, "Style mix", f"From w index (0 = all, coarse; "
                                        f"{self._num_ws - 1} = finest only):",
                                        self._num_ws // 2, 0, self._num_ws - 1)
        return first if ok else None

    def _delete(self) -> None:
        group = self._group(self.list.currentRow())
        if group is not None:
            self.command.emit(cmd.remove_edits(group))
