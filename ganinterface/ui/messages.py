"""The window's questions and error messages, in one place tests can answer without a person."""

from __future__ import annotations

import logging

from PySide6.QtWidgets import QMessageBox, QWidget

log = logging.getLogger(__name__)


class MessageBoxes:
    """The window's questions and errors; tests set ``answer`` to run without a person."""

    def __init__(self, parent: QWidget) -> None:
        self.parent = parent
        self.errors: list[str] = []
        self.answer: QMessageBox.StandardButton | None = None

    def error(self, title: str, message: str) -> None:
        self.errors.append(message)
        log.info("%s: %s", title, message)
        if self.answer is None:
            QMessageBox.critical(self.parent, title, message)

    def save_changes(self) -> QMessageBox.StandardButton:
        """Save, Discard or Cancel: what to do with unsaved changes before they are dropped."""
        buttons = (QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                   | QMessageBox.StandardButton.Cancel)
        return self.answer or QMessageBox.question(
            self.parent, "Unsaved changes", "The scene has unsaved changes. Save them first?", buttons)

    def restore_session(self) -> QMessageBox.StandardButton:
        """Yes or No: take up the session a killed ganinterface left behind?"""
        buttons = QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No
        return self.answer or QMessageBox.question(
            self.parent, "Restore session",
            "ganinterface did not close normally last time. Restore the session it had open?", buttons)
