"""Start the window: ``ganinterface`` (built-in model), ``ganinterface MODEL`` or
``ganinterface SCENE.json``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ganinterface",
        description="Open the ganinterface window. Sub-commands (render, export, ...) run headless: "
                    "see `ganinterface --help`.")
    parser.add_argument("path", nargs="?",
                        help="a generator checkpoint (.pkl, .pt, .safetensors) or a saved scene "
                             "(.json, or a .png exported by ganinterface); none: the built-in model")
    # for packaging/build.sh: does a built app start and draw? (exit 0 after the first frame)
    parser.add_argument("--selftest", action="store_true", help=argparse.SUPPRESS)
    return parser


def apply_theme(app) -> None:
    """Fusion with a dark neutral palette: colours of the images stand out against grey."""
    from PySide6.QtGui import QColor, QPalette

    app.setStyle("Fusion")
    palette = QPalette()
    base, window, text = QColor(30, 30, 32), QColor(45, 45, 48), QColor(225, 225, 225)
    for role, colour in ((QPalette.ColorRole.Window, window), (QPalette.ColorRole.WindowText, text),
                         (QPalette.ColorRole.Base, base), (QPalette.ColorRole.AlternateBase, window),
                         (QPalette.ColorRole.Text, text), (QPalette.ColorRole.Button, window),
                         (QPalette.ColorRole.ButtonText, text), (QPalette.ColorRole.ToolTipBase, base),
                         (QPalette.ColorRole.ToolTipText, text),
                         (QPalette.ColorRole.Highlight, QColor(60, 120, 200)),
                         (QPalette.ColorRole.HighlightedText, QColor(255, 255, 255)),
                         (QPalette.ColorRole.Mid, QColor(150, 150, 150)),
                         (QPalette.ColorRole.PlaceholderText, QColor(130, 130, 130))):
        palette.setColor(role, colour)
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(110, 110, 110))
    app.setPalette(palette)


def app_icon():
    """The bundled icon, one PNG per size (so Qt needs no SVG plugin)."""
    from PySide6.QtGui import QIcon

    from ganinterface import bundled

    icon = QIcon()
    for path in sorted(bundled.resources_dir().glob("ganinterface-*.png")):
        icon.addFile(str(path))
    return icon


GUI_SWITCH_INTERVAL = 0.001  # seconds


def configure_runtime() -> None:
    """Let the GUI thread get the GIL back quickly from the render thread.

    Python hands the GIL between threads every ``switchinterval`` (default 5 ms); a render thread
    running many small torch ops would otherwise make every Python slot in the GUI wait that long.
    """
    sys.setswitchinterval(GUI_SWITCH_INTERVAL)


def open_first(window: Any, path: str | None) -> None:
    """Open what the command line names (a scene, a checkpoint, or the built-in model).

    Called before the window is first shown, so the model starts loading on its thread while the
    window lays itself out; the start-up benchmark calls it the same way.
    """
    from ganinterface.ui.documents import SCENE_SUFFIXES

    is_scene = bool(path) and Path(path).suffix.lower() in SCENE_SUFFIXES
    if not (is_scene and window.documents.open_scene(path)):
        window.load_model_async(None if is_scene else path)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    from ganinterface.ui.main_window import MainWindow

    configure_runtime()
    logging.basicConfig(level=logging.WARNING, format="ganinterface: %(levelname)s: %(message)s")
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("ganinterface")
    app.setOrganizationName("ganinterface")
    pg.setConfigOptions(imageAxisOrder="row-major")
    apply_theme(app)
    app.setWindowIcon(app_icon())
    app.setDesktopFileName("ganinterface")  # Wayland shows the icon of the desktop entry so named
    window = MainWindow()
    previous_hook = _report_unexpected_errors(window)
    try:
        # a session a crash left comes first; --selftest (a fresh install) asks no question
        if args.selftest or not window.restore_autosave():
            open_first(window, args.path)
        window.show()
        verdict = _close_after_first_frame(window) if args.selftest else None
        code = app.exec()
        return code if verdict is None else verdict["code"]
    finally:
        sys.excepthook = previous_hook


SELFTEST_TIMEOUT_S = 60.0


def _close_after_first_frame(window: Any) -> dict[str, int]:
    """``--selftest``: close the window once it shows a frame; the verdict's code is 0 then, 1 if
    no frame came within ``SELFTEST_TIMEOUT_S``."""
    from PySide6.QtCore import QTimer

    verdict = {"code": 1}
    poll = QTimer(window)

    def check() -> None:
        if window.last_result is not None:
            poll.stop()
            from ganinterface.models.base import size_text

            height, width = window.last_result.image.shape[:2]
            print(f"ganinterface --selftest: the window shows a {size_text(width, height)} frame")
            verdict["code"] = 0
            window.close()

    def give_up() -> None:
        if poll.isActive():
            poll.stop()
            print(f"ganinterface --selftest: no frame within {SELFTEST_TIMEOUT_S:g} s",
                  file=sys.stderr)
            window.close()

    poll.timeout.connect(check)
    poll.start(100)
    QTimer.singleShot(int(SELFTEST_TIMEOUT_S * 1000), give_up)
    return verdict


def _report_unexpected_errors(window: Any) -> Callable[..., Any]:
    """A bug in a slot must not pass silently: log it in full, tell the user in one line.

    Installs ``sys.excepthook`` (Qt routes exceptions from slots there); returns the one replaced.
    """
    previous = sys.excepthook

    def hook(kind, value, trace) -> None:
        if issubclass(kind, KeyboardInterrupt):
            previous(kind, value, trace)
            return
        logging.getLogger("ganinterface").error("unexpected error", exc_info=(kind, value, trace))
        window.statusBar().showMessage(f"Unexpected error (details on the console): "
                                       f"{kind.__name__}: {value}".splitlines()[0], 15000)

    sys.excepthook = hook
    return previous
