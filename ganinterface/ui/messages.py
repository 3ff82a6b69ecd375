"""The window's questions and error messages, in one place tests can answer without a person."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtWidgets import QMessageBox

log = logging.getLogger(__name__)


class MessageBoxes:
    """The window's questions and errors; tests replace ``answer`` to run without a person."""

    def __init__(self, window: Any) -> None:
        self.window = window
        self.errors: list[str] = []
        self.answer: QMessageBox.StandardButton | None = None

    def error(self, title: str, message: str) -> None:
        self.errors.append(message)
        log.info("%s: %s", title, message)
        if self.answer is None:
            QMessageBox.critical(self.window, title, message)

    def maybe_save(self) -> bool:
        """True if it is fine to drop the current document (saved, discarded, or clean)."""
        if self.window.stack.is_clean():
            return True
        buttons = (QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                   | QMessageBox.StandardButton.Cancel)
        answer = self.answer or QMessageBox.question(
            self.window, "Unsaved changes", "The scene has unsaved changes. Save them first?", buttons)
        if answer == QMessageBox.StandardButton.Save:
            return self.window.save_scene()
        return answer == QMessageBox.StandardButton.Discard
