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


def _export_dialog(window) -> ExportDialog:
    return ExportDialog(window, window.model, window.stack.scene, window.animation_panel.frames,
                        window.settings)


def _seeds_dialog(window) -> ApplyToSeedsDialog:
    return ApplyToSeedsDialog(window, window.model, window.stack.scene, window.settings)


def _label(fmt: str) -> str:
    return next(label for label, (f, _, _) in EXPORT_KINDS.items() if f == fmt)


def test_dialog_cancel_midway_leaves_no_file(window, qtbot, tmp_path):
    window.animation_panel.add_keyframe(0)
    window.animation_panel.add_keyframe(1)
    window.animation_panel.frames_count.setValue(200)  # plenty left to do when Cancel lands
    dialog = _export_dialog(window)
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
    dialog = _export_dialog(window)
    dialog.kind.setCurrentText(_label("strip"))
    dialog.scale.setValue(1)
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
    dialog = _export_dialog(window)
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
    dialog = _seeds_dialog(window)
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


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh home with no XDG user folders of its own: Pictures is ~/Pictures if it exists."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    return home


def test_exports_go_to_pictures_or_home_and_then_to_the_folder_last_written(window, qtbot, home,
                                                                            tmp_path):
    dialog = _export_dialog(window)
    assert dialog.path.text() == str(home / "image.png")  # no Pictures folder: home
    dialog.done(0)
    (home / "Pictures").mkdir()
    dialog = _export_dialog(window)
    assert dialog.path.text() == str(home / "Pictures" / "image.png")
    dialog.kind.setCurrentText(_label("gif"))
    assert dialog.path.text() == str(home / "Pictures" / "animation.gif")
    (tmp_path / "renders").mkdir()
    dialog.kind.setCurrentText(_label("png"))
    dialog.path.setText(str(tmp_path / "renders" / "mine.png"))
    with qtbot.waitSignal(dialog.runner.finished, timeout=30_000):
        dialog.start()
    dialog.done(0)
    again = _export_dialog(window)
    assert again.path.text() == str(tmp_path / "renders" / "image.png")
    seeds = _seeds_dialog(window)
    assert seeds.path.text() == str(tmp_path / "renders" / "recipe-output")
    again.done(0)
    seeds.done(0)


@pytest.mark.parametrize("which", ["export", "seeds"])
def test_after_writing_the_dialog_stays_open_saying_where_and_offers_close(window, qtbot, tmp_path,
                                                                           which):
    dialog = _export_dialog(window) if which == "export" else _seeds_dialog(window)
    target = tmp_path / ("portrait.png" if which == "export" else "seeds")
    if which == "seeds":
        dialog.seeds.setText("1-2")
    dialog.path.setText(str(target))
    dialog.show()
    assert dialog.cancel_button.text() == "Cancel"
    with qtbot.waitSignal(dialog.runner.finished, timeout=30_000):
        dialog.start()
    assert dialog.isVisible() and dialog.message.text() == f"Wrote {target}"
    assert dialog.cancel_button.text() == "Close" and dialog.start_button.isEnabled()
    dialog.cancel_button.click()
    assert not dialog.isVisible()


def test_the_frames_note_is_never_cut_short(window, qtbot):
    """Switching from the image to an animation makes the note two lines: the dialog, sized for
    the first, must show both."""
    window.animation_panel.add_keyframe(0)
    window.animation_panel.add_keyframe(1)
    dialog = _export_dialog(window)
    dialog.show()
    qtbot.waitExposed(dialog)
    dialog.kind.setCurrentText(_label("gif"))
    qtbot.wait(10)
    note = dialog.frame_note
    assert "Animation tab" in note.text()
    assert note.height() >= note.heightForWidth(note.width())
    dialog.done(0)


def test_the_first_export_of_a_small_model_is_enlarged_and_the_size_chosen_is_remembered(
        window, qtbot, tmp_path):
    from ganinterface.ui.export_dialog import FIRST_EXPORT_HEIGHT, default_scale

    height = window.model.shape.height  # the tiny model: 64 px high
    dialog = _export_dialog(window)
    assert dialog.scale.value() == FIRST_EXPORT_HEIGHT // height == 8
    assert (default_scale(128), default_scale(1024), default_scale(16)) == (4, 1, 16)
    dialog.scale.setValue(3)
    dialog.path.setText(str(tmp_path / "me.png"))
    with qtbot.waitSignal(dialog.runner.finished, timeout=30_000):
        dialog.start()
    assert Image.open(tmp_path / "me.png").size == (3 * window.model.shape.width, 3 * height)
    dialog.done(0)
    again = _export_dialog(window)
    assert again.scale.value() == 3
    again.done(0)


def test_a_size_setting_that_is_not_a_number_gives_the_default(window):
    from ganinterface.ui.export_dialog import LAST_SCALE

    window.settings.setValue(LAST_SCALE, "large")
    dialog = _export_dialog(window)
    assert dialog.scale.value() == 8  # the tiny model's 64 px, enlarged to about 512
    dialog.done(0)
