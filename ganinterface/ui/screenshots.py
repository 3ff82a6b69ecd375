"""Refresh the screenshots in docs/:

    xvfb-run -a -s "-screen 0 1280x800x24" python -m ganinterface.ui.screenshots docs

Drives the real window through a short tour (a seed, a painted edit, a ranked region, a channel
overlay, directions, an animation, the shipped recipes, a picture framed and projected) and grabs
the screen after each step.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QPointF, QSettings, Qt
from PySide6.QtWidgets import QApplication


def _settle(app: QApplication, window, seconds: float = 0.3) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        app.processEvents()
        if window.model is not None and window.bridge.executor.is_idle() and not window.loader_task.busy():
            break
        time.sleep(0.02)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def _grab(app: QApplication, window, path: Path) -> None:
    _settle(app, window)
    screen = window.screen()
    pixmap = screen.grabWindow(0, window.frameGeometry().x(), window.frameGeometry().y(),
                               window.frameGeometry().width(), window.frameGeometry().height())
    if pixmap.isNull() or pixmap.width() < 10:
        pixmap = window.grab()
    pixmap.save(str(path))


def _drag(window, points: list[tuple[float, float]], button=Qt.MouseButton.LeftButton) -> None:
    height, width = window.canvas.image_size()
    for index, (x, y) in enumerate(points):
        window.canvas._drag(QPointF(x * width, y * height), button, index == 0,
                            index == len(points) - 1)


def _grab_projection(app: QApplication, window, scratch: Path, path: Path) -> None:
    """Two procedural portraits side by side: the frame moved onto the left one and projected."""
    import numpy as np
    from PIL import Image

    from ganinterface.demo.portraits import render_portrait

    pair = np.concatenate([render_portrait(seed, 256, 128)[0] for seed in (4, 21)], axis=1)
    Image.fromarray(pair).save(scratch / "two-portraits.png")
    dialog = window.documents.project_picture(scratch / "two-portraits.png")
    view = dialog.crop_view
    view.set_frame(view.frame.moved(-view.frame.picture_width, 0))  # the whole left portrait
    dialog.move(80, 60)
    dialog.project()
    deadline = time.monotonic() + 120
    while dialog.result is None and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)
    dialog.grab().save(str(path))
    dialog.reject()


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ganinterface.ui.screenshots",
        description="Drive the real window through a short tour and grab the screen after each "
                    "step, with a fresh layout and settings (never the user's).",
        epilog='On a 1280x800 screen: xvfb-run -a -s "-screen 0 1280x800x24" '
               'python -m ganinterface.ui.screenshots docs')
    parser.add_argument("folder", nargs="?", type=Path, default=Path("docs"),
                        help="where the screenshot-*.png files go (default: docs)")
    parser.add_argument("seed", nargs="?", type=int, default=3,
                        help="the portrait shown first (default: 3)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    out = args.folder
    out.mkdir(parents=True, exist_ok=True)
    import pyqtgraph as pg

    from ganinterface.ui.app import apply_theme
    from ganinterface.ui.canvas import Tool
    from ganinterface.ui.main_window import MainWindow
    from ganinterface.ui.model_loading import shipped_files

    app = QApplication.instance() or QApplication([sys.argv[0]])
    pg.setConfigOptions(imageAxisOrder="row-major")
    apply_theme(app)
    scratch = tempfile.TemporaryDirectory()  # a fresh layout, and the user's own left alone
    settings = QSettings(str(Path(scratch.name) / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings)
    window.resize(1280, 800)
    window.move(0, 0)
    window.show()
    window.load_model_async(None)
    _settle(app, window)
    window.latent_panel.seed.setValue(args.seed)
    _grab(app, window, out / "screenshot-main.png")

    # rank channels by a region around the lower face, select the top ones and paint with them
    window.set_tool(Tool.REGION)
    _drag(window, [(0.35, 0.55), (0.65, 0.7)])
    window.channel_finder.rank()
    window.features_panel.top_count.setValue(6)
    window.features_panel.select_top.click()
    window.set_tool(Tool.BRUSH)
    window.controls.brush_size.setValue(10)
    _drag(window, [(0.4, 0.62), (0.5, 0.64), (0.6, 0.62)])
    _grab(app, window, out / "screenshot-paint.png")

    window.feature_views.open_channel(window.features_panel.selected_channels()[0])
    window.features_panel.overlay.setChecked(True)
    _grab(app, window, out / "screenshot-channel.png")
    # directions: the built-in ones on a portrait with a band, "hair band" moved to remove it
    window.features_panel.overlay.setChecked(False)
    window.feature_views.clear_region()
    window.features_panel.ranking.setRowCount(0)
    window.features_panel.set_selected_channels(())
    window.statusBar().clearMessage()
    window.stack.reset(window.stack.scene.replace(seed=6, edits=()))
    window.extra_dock.raise_()
    window._extra_tabs.setCurrentWidget(window.directions_panel)
    directions = {path.stem: path for path in shipped_files(window.model, "directions")}
    for stem in ("hair-band", "mouth-open"):
        if stem in directions:
            window.directions_panel.load(str(directions[stem]))
    _settle(app, window)
    if window.directions_panel._rows:
        window.directions_panel._rows[0].amount.setValue(-1.125)  # its shipped amount below zero
    _settle(app, window)
    window.features_dock.raise_()
    _grab(app, window, out / "screenshot-directions.png")

    # animation: two seeds as keyframes, the preview scrubbed half way
    window.stack.reset(window.stack.scene.replace(seed=args.seed, edits=()))
    window.statusBar().clearMessage()  # what the directions step said would be gone by now
    window._extra_tabs.setCurrentWidget(window.animation_panel)
    window.animation_panel.add_keyframe(3)
    window.animation_panel.add_keyframe(8)
    window.animation_panel.position.setValue(12)
    _grab(app, window, out / "screenshot-animation.png")

    # the shipped recipes on a portrait with a closed mouth and no band: one row each in the stack
    window.animation_panel.stop()
    window.stack.reset(window.stack.scene.replace(seed=9, edits=()))
    window.feature_views.clear_region()
    window.features_panel.ranking.setRowCount(0)
    window.features_panel.set_selected_channels(())
    window.statusBar().clearMessage()
    window.edits_dock.raise_()
    recipes = {path.stem: path for path in shipped_files(window.model, "recipes")}
    for stem in ("open-mouth", "add-hair-band"):
        if stem in recipes:
            window.documents.apply_recipe(str(recipes[stem]))
    window.edits_panel.list.setCurrentRow(0)
    _grab(app, window, out / "screenshot-recipes.png")
    _grab_projection(app, window, Path(scratch.name), out / "screenshot-projection.png")
    window.stack.mark_clean()
    window.close()
    scratch.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
