"""Export dialogs: a cancelled export leaves no file; the PNG reopens as its Scene; recipes over seeds.

The jobs behind them (cancelling midway in every format, failed frames) are tested without a window
in test_jobs.py."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ganinterface.engine.renderer import Renderer
from ganinterface.engine.kinds import FeatureEdit
from ganinterface.engine.scene import Mask, Rect, Scene
from ganinterface.export.images import read_png_scene
from ganinterface.ui.export_dialog import EXPORT_KINDS, ApplyToSeedsDialog, ExportDialog
from ui_support import open_window, tiny_generator

EDIT = FeatureEdit("b32.conv1", (0, 1, 2), Mask((Rect(0.2, 0.2, 0.5, 0.4),)), 4.0)


def direct(scene: Scene) -> np.ndarray:
    return Renderer(tiny_generator()).render(scene).image


@pytest.fixture
def window(qtbot, tmp_path):
    with open_window(qtbot, tmp_path) as win:
        yield win


def _label(fmt: str) -> str:
    return next(label for label, (f, _, _) in EXPORT_KINDS.items() if f == fmt)


def test_dialog_cancel_midway_leaves_no_file(window, qtbot, tmp_path):
    window.animation_panel.add_keyframe(0)
    window.animation_panel.add_keyframe(1)
    window.animation_panel.frames_count.setValue(200)  # plenty left to do when Cancel lands
    dialog = ExportDialog(window, window.model, window.stack.scene, window.animation_panel.frames)
    dialog.kind.setCurrentText(_label("gif"))
    target = tmp_path / "out.gif"
    dialog.path.setText(str(target))
    dialog.runner.progressed.connect(lambda done, total: done == 3 and dialog.cancel_or_close())
    with qtbot.waitSignal(dialog.runner.finished, timeout=30_000):
        dialog.start()
    assert dialog.message.text().startswith("Cancelled")
    assert not target.exists()
    assert list(tmp_path.glob("*.gif*")) == [] and dialog.written is None
    dialog.done(0)


def test_dialog_exports_gif_of_the_animation_frames(window, qtbot, tmp_path):
    window.animation_panel.add_keyframe(0)
    window.animation_panel.add_keyframe(1)
    window.animation_panel.frames_count.setValue(4)
    dialog = ExportDialog(window, window.model, window.stack.scene, window.animation_panel.frames)
    dialog.kind.setCurrentText(_label("strip"))
    target = tmp_path / "strip.png"
    dialog.path.setText(str(target))
    with qtbot.waitSignal(dialog.runner.finished, timeout=30_000):
        dialog.start()
    assert dialog.written == target
    strip = np.asarray(Image.open(target).convert("RGB"))
    frames = window.animation_panel.frames()
    expected = np.concatenate([direct(f) for f in frames], axis=1)
    np.testing.assert_array_equal(strip, expected)
    dialog.done(0)


def test_current_image_png_reopens_as_the_same_scene(window, qtbot, tmp_path):
    window.stack.reset(Scene(seed=6, edits=(EDIT,)))
    dialog = ExportDialog(window, window.model, window.stack.scene, window.animation_panel.frames)
    dialog.kind.setCurrentText(_label("png"))
    target = tmp_path / "portrait.png"
    dialog.path.setText(str(target))
    dialog.scale.setValue(2)
    with qtbot.waitSignal(dialog.runner.finished, timeout=30_000):
        dialog.start()
    dialog.done(0)
    image = np.asarray(Image.open(target).convert("RGB"))
    expected = direct(Scene(seed=6, edits=(EDIT,)))
    np.testing.assert_array_equal(image, expected.repeat(2, axis=0).repeat(2, axis=1))
    assert read_png_scene(target) == window.stack.scene
    window.stack.reset(Scene(seed=1))
    assert window.documents.open_scene(target)
    assert window.stack.scene == Scene(seed=6, edits=(EDIT,))


def test_apply_edits_to_a_seed_range(window, qtbot, tmp_path):
    window.stack.reset(Scene(seed=0, edits=(EDIT,)))
    dialog = ApplyToSeedsDialog(window, window.model, window.stack.scene)
    dialog.seeds.setText("3-5")
    dialog.path.setText(str(tmp_path / "out"))
    with qtbot.waitSignal(dialog.runner.finished, timeout=30_000):
        dialog.start()
    dialog.done(0)
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["seed00003.png", "seed00004.png", "seed00005.png"]
    for seed in (3, 4, 5):
        image = np.asarray(Image.open(tmp_path / "out" / f"seed{seed:05d}.png").convert("RGB"))
        np.testing.assert_array_equal(image, direct(Scene(seed=seed, edits=(EDIT,))))
