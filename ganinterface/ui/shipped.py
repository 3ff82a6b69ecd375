"""A drop-down button listing files shipped with the built-in model (recipes, directions)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtWidgets import QMenu, QPushButton, QWidget


class ShippedMenuButton(QPushButton):
    """A push button with a menu: it is as wide as its text plus the menu's arrow, never clipped."""

    def __init__(self, text: str, tip: str, parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setToolTip(tip)
        self.setMenu(QMenu(self))
        self.setEnabled(False)

    def set_files(self, paths: Sequence[Path], chosen: Callable[[str], object]) -> None:
        """One entry per file, named after it ("open-mouth.json" -> "open mouth")."""
        self.menu().clear()
        for path in paths:
            action = self.menu().addAction(path.stem.replace("-", " ").replace("_", " "))
            action.triggered.connect(lambda _=False, p=str(path): chosen(p))
        self.setEnabled(bool(paths))
