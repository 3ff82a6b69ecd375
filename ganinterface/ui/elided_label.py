"""A label whose size never follows its text, for text that changes while the user works (readouts,
titles): it keeps its lines' height when empty, and a line too long for its width ends in "…"
instead of widening the panel.  The full text is its tooltip while any of it is cut."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QLabel, QSizePolicy, QToolTip, QWidget


class ElidedLabel(QLabel):
    def __init__(self, text: str = "", lines: int = 1, parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.lines = lines
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        margins = self.contentsMargins()
        self.setFixedHeight(lines * self.fontMetrics().lineSpacing() + margins.top()
                            + margins.bottom())

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt naming)
        return QSize(0, self.height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt naming)
        return self.sizeHint()

    def shown_lines(self) -> list[str]:
        """The lines as drawn at the label's width: at most ``lines``, each cut to fit."""
        width = self.contentsRect().width()
        metrics = self.fontMetrics()
        return [metrics.elidedText(line, Qt.TextElideMode.ElideRight, width)
                for line in self.text().split("\n")[:self.lines]]

    def is_elided(self) -> bool:
        return self.shown_lines() != self.text().split("\n")

    def paintEvent(self, _event: QEvent) -> None:  # noqa: N802 (Qt naming)
        painter = QPainter(self)
        area = self.contentsRect()
        spacing = self.fontMetrics().lineSpacing()
        for index, line in enumerate(self.shown_lines()):
            row = area.adjusted(0, index * spacing, 0, 0)
            row.setHeight(spacing)
            self.style().drawItemText(painter, row, Qt.AlignmentFlag.AlignLeft
                                      | Qt.AlignmentFlag.AlignVCenter, self.palette(),
                                      self.isEnabled(), line, self.foregroundRole())

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and not self.toolTip():
            if self.is_elided():
                QToolTip.showText(event.globalPos(), self.text(), self)
            else:
                QToolTip.hideText()
            return True
        return super().event(event)
