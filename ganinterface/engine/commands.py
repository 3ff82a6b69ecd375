"""Undo/redo as data: every change to the document is a command mapping one Scene to the next.

Scenes are immutable, so the history simply keeps (before, after) pairs: undo gives back the exact
earlier Scene, and with it the exact earlier pixels.  A slider drag or a paint stroke sends many
commands with the same ``merge_key``; consecutive ones merge into one history entry (one Ctrl+Z
undoes the whole drag) until ``close_merge()`` is called, e.g. on mouse release.

This module knows nothing of Qt (glue's ``CommandStack`` is the model); the window binds actions
and shortcuts to it and listens for changes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Sequence

from ganinterface.engine.kinds import Edit, kind_of
from ganinterface.engine.scene import Recipe, Scene


@dataclasses.dataclass(frozen=True)
class Command:
    """A named change: ``apply(scene) -> new scene``."""

    label: str
    apply: Callable[[Scene], Scene]
    merge_key: Hashable | None = None  # consecutive commands with an equal, non-None key merge


@dataclasses.dataclass(frozen=True)
class _Entry:
    label: str
    before: Scene
    after: Scene
    merge_key: Hashable | None


Listener = Callable[[Scene], None]


class CommandStack:
    """History of Scenes with undo/redo, merging and a clean (saved) marker."""

    def __init__(self, scene: Scene, limit: int = 500) -> None:
        self._scene = scene
        self._undo: list[_Entry] = []
        self._redo: list[_Entry] = []
        self._limit = limit
        self._merge_open = False
        # Number of undo entries at the last save; None when that state can no longer be reached.
        self._clean_depth: int | None = 0
        self._listeners: list[Listener] = []

    # ---- state ---------------------------------------------------------------------------------
    @property
    def scene(self) -> Scene:
        return self._scene

    def can_undo(self) -> bool:
        return bool(self._undo)

    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo_label(self) -> str:
        return self._undo[-1].label if self._undo else ""

    def redo_label(self) -> str:
        return self._redo[-1].label if self._redo else ""

    def labels(self) -> list[str]:
        """Labels of the undoable entries, oldest first."""
        return [entry.label for entry in self._undo]

    @property
    def merging(self) -> bool:
        """A drag is in progress: the last change may still be merged into (until ``close_merge``)."""
        return self._merge_open

    def is_clean(self) -> bool:
        return self._clean_depth == len(self._undo)

    def mark_clean(self) -> None:
        self._clean_depth = len(self._undo)
        self._merge_open = False
        self._notify()

    def subscribe(self, listener: Listener) -> None:
        """``listener(scene)`` after every change (do, undo, redo, reset, clean/dirty)."""
        self._listeners.append(listener)

    # ---- changes -------------------------------------------------------------------------------
    def push(self, command: Command) -> Scene:
        """Apply ``command``; a no-op change leaves the history untouched."""
        before = self._scene
        after = command.apply(before)
        if after == before:
            return before
        top = self._undo[-1] if self._undo else None
        if (self._merge_open and top is not None and command.merge_key is not None
                and top.merge_key == command.merge_key):
            # mark_clean closes merging, so the entry merged into is never the saved state
            self._undo[-1] = dataclasses.replace(top, after=after, label=command.label)
        else:
            self._undo.append(_Entry(command.label, before, after, command.merge_key))
            if self._clean_depth is not None and self._clean_depth > len(self._undo) - 1:
                self._clean_depth = None  # the saved state was in the redo branch we drop
            if len(self._undo) > self._limit:
                del self._undo[0]
                self._clean_depth = None if self._clean_depth in (None, 0) else self._clean_depth - 1
        self._redo.clear()
        self._merge_open = command.merge_key is not None
        self._scene = after
        self._notify()
        return after

    def close_merge(self) -> None:
        """End a drag: the next command starts a new history entry even with the same merge key."""
        self._merge_open = False

    def undo(self) -> Scene:
        if self._undo:
            entry = self._undo.pop()
            self._redo.append(entry)
            self._scene = entry.before
            self._merge_open = False
            self._notify()
        return self._scene

    def redo(self) -> Scene:
        if self._redo:
            entry = self._redo.pop()
            self._undo.append(entry)
            self._scene = entry.after
            self._merge_open = False
            self._notify()
        return self._scene

    def reset(self, scene: Scene) -> None:
        """Start a new document (opened file, new model): empty history, clean."""
        self._scene = scene
        self._undo.clear()
        self._redo.clear()
        self._merge_open = False
        self._clean_depth = 0
        self._notify()

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener(self._scene)


# ---- command factories: the changes the window makes ---------------------------------------------

def set_fields(label: str, merge_key: Hashable | None = None, **changes: object) -> Command:
    """Change Scene fields, e.g. ``set_fields("Seed 3", seed=3, w=None)``."""
    return Command(label, lambda scene: scene.replace(**changes), merge_key)


def add_edit(edit: Edit, label: str = "Add edit", merge_key: Hashable | None = None) -> Command:
    return Command(label, lambda scene: scene.replace(edits=scene.edits + (edit,)), merge_key)


def replace_edit(index: int, edit: Edit, label: str = "Change edit",
                 merge_key: Hashable | None = None) -> Command:
    def apply(scene: Scene) -> Scene:
        edits = list(scene.edits)
        edits[index] = edit
        return scene.replace(edits=tuple(edits))

    return Command(label, apply, merge_key)


def edit_groups(edits: Sequence[Edit]) -> list[range]:
    """Runs of consecutive edits that share a non-empty name (a recipe's per-channel edits), and each
    other edit on its own: what the edit stack shows as one row each."""
    groups: list[range] = []
    for index, edit in enumerate(edits):
        if groups and edit.name and edits[groups[-1].start].name == edit.name:
            groups[-1] = range(groups[-1].start, index + 1)
        else:
            groups.append(range(index, index + 1))
    return groups


def update_edits(group: range, label: str = "Change edits", merge_key: Hashable | None = None,
                 **changes: object) -> Command:
    """Change the same fields of every edit in ``group``."""
    def apply(scene: Scene) -> Scene:
        edits = list(scene.edits)
        for index in group:
            edits[index] = dataclasses.replace(edits[index], **changes)
        return scene.replace(edits=tuple(edits))

    return Command(label, apply, merge_key)


def keep_rest(group: range, keep: bool) -> Command:
    """Make every edit in ``group`` that can keep the rest of the picture do so, or not."""
    def apply(scene: Scene) -> Scene:
        edits = list(scene.edits)
        for index in group:
            if kind_of(edits[index]).can_keep_rest:
                edits[index] = dataclasses.replace(edits[index], keep_rest=keep)
        return scene.replace(edits=tuple(edits))

    return Command("Keep the rest" if keep else "Let the edit change the rest", apply)


def scale_edits(group: range, factor: float, label: str = "Edit strength",
                merge_key: Hashable | None = None) -> Command:
    """Multiply the amount of every edit in ``group`` that has one (a recipe's strength)."""
    def apply(scene: Scene) -> Scene:
        edits = list(scene.edits)
        for index in group:
            edits[index] = kind_of(edits[index]).scaled(edits[index], factor)
        return scene.replace(edits=tuple(edits))

    return Command(label, apply, merge_key)


def remove_edits(group: range, label: str = "Delete edits") -> Command:
    return Command(label, lambda scene: scene.replace(
        edits=scene.edits[:group.start] + scene.edits[group.stop:]))


def move_edits(group: range, new_start: int, label: str = "Reorder edits") -> Command:
    """Move the edits of ``group`` as a block so that it starts at ``new_start`` among the others."""
    def apply(scene: Scene) -> Scene:
        block = scene.edits[group.start:group.stop]
        rest = scene.edits[:group.start] + scene.edits[group.stop:]
        if not 0 <= new_start <= len(rest):
            return scene
        return scene.replace(edits=rest[:new_start] + block + rest[new_start:])

    return Command(label, apply)


def update_edit(index: int, label: str = "Change edit", merge_key: Hashable | None = None,
                **changes: object) -> Command:
    """Change fields of edit ``index`` (amount, enabled, channels, ...)."""
    return update_edits(range(index, index + 1), label, merge_key, **changes)


def retarget_edit(index: int, channels: tuple[int, ...], label: str = "Re-target edit") -> Command:
    """Edit ``index`` on other ``channels``; a level recorded for the old ones (a recipe's
    ``FeatureEdit.level``) is dropped with them."""
    def apply(scene: Scene) -> Scene:
        edit = scene.edits[index]
        level = {"level": None} if getattr(edit, "level", None) is not None else {}
        edits = list(scene.edits)
        edits[index] = dataclasses.replace(edit, channels=channels, **level)
        return scene.replace(edits=tuple(edits))

    return Command(label, apply)


def remove_edit(index: int, label: str = "Delete edit") -> Command:
    return remove_edits(range(index, index + 1), label)


def move_edit(index: int, new_index: int, label: str = "Reorder edits") -> Command:
    return move_edits(range(index, index + 1), new_index, label)


def set_edits(edits: Sequence[Edit], label: str = "Replace edits") -> Command:
    return Command(label, lambda scene: scene.replace(edits=tuple(edits)))


def apply_recipe(recipe: Recipe, label: str | None = None) -> Command:
    return Command(label or f"Apply recipe {recipe.name}".strip(), recipe.applied_to)
