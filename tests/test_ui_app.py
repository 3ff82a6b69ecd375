"""The real entry point: `ganinterface BAD_FILE` shows one error, then falls back to the built-in model."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from ganinterface.ui import app as ui_app
from ganinterface.ui.main_window import MainWindow


def test_main_with_unreadable_checkpoint_shows_error_then_runs(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # QSettings stay out of the real home
    bad = tmp_path / "not-a-model.pt"
    bad.write_bytes(b"this is not a checkpoint")
    seen: dict[str, object] = {"errors": []}

    def poll() -> None:
        dialog = QApplication.activeModalWidget()
        if isinstance(dialog, QMessageBox):
            seen["errors"].append(dialog.text())
            dialog.done(0)
            return
        windows = [w for w in QApplication.topLevelWidgets()
                   if isinstance(w, MainWindow) and w.isVisible() and not w._shut_down]
        if windows and windows[0].model is not None and windows[0].last_result is not None:
            seen["title"] = windows[0].windowTitle()
            seen["image"] = windows[0].last_result.image.shape
            windows[0].stack.mark_clean()
            windows[0].close()

    timer = QTimer()
    timer.timeout.connect(poll)
    timer.start(50)
    try:
        assert ui_app.main([str(bad)]) == 0
    finally:
        timer.stop()
    assert len(seen["errors"]) == 1 and "not-a-model.pt" in seen["errors"][0]
    assert seen["image"][2] == 3 and "ganinterface" in seen["title"]


def test_parser_accepts_no_argument_or_one_path():
    parser = ui_app.build_parser()
    assert parser.parse_args([]).path is None
    assert parser.parse_args(["model.pkl"]).path == "model.pkl"
