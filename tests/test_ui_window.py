"""The window's workflows, driven offscreen with a tiny real StyleGAN2 and checked against direct renders."""

from __future__ import annotations

import dataclasses
import pickle
import threading
import time

import numpy as np
import pytest
from PySide6.QtCore import Qt

from ganinterface.engine import commands as cmd
from ganinterface.engine.renderer import Renderer
from ganinterface.engine.kinds import FeatureEdit
from ganinterface.engine.scene import Mask, Recipe, Rect, Scene
from ganinterface.ui.canvas import Tool
from ui_support import drag, open_window, tiny_generator

LAYER = "b32.conv1"  # late layer: an edit there stays local in the 64x32 image


def direct_render(scene: Scene, taps=()) -> np.ndarray:
    """An independent render of ``scene`` (fresh Renderer, no window, no cache shared)."""
    result = Renderer(tiny_generator()).render(scene, taps)
    assert result.error is None, result.error
    return result


@pytest.fixture
def window(qtbot, tmp_path):
    with open_window(qtbot, tmp_path) as win:
        win.features_panel.set_current_layer(LAYER)
        yield win


def test_starts_with_model_and_image(window):
    assert window.model is not None
    np.testing.assert_array_equal(window.last_result.image, direct_render(Scene()).image)
    assert "tiny" in window.controls.model_label.text()
    assert window.features_panel.features().shape == (64, 32, 16)


def test_paint_stroke_changes_image_only_near_it(window):
    before = window.last_result.image.copy()
    window.features_panel.selected.setText("0-15")
    window.features_panel.selected.editingFinished.emit()
    window.controls.brush_size.setValue(4)
    drag(window, Tool.BRUSH, [(6.0, 8.0), (8.0, 9.0), (10.0, 10.0)])
    after = window.last_result.image
    edit = window.stack.scene.edits[0]
    assert isinstance(edit, FeatureEdit) and edit.layer == LAYER and edit.channels == tuple(range(16))
    assert edit.amount > 0 and len(edit.mask.shapes[0].points) == 3
    changed = np.any(after != before, axis=2)
    assert changed.sum() > 10
    ys, xs = np.nonzero(changed)
    # nothing changes further than the receptive field of the two layers after b32.conv1 allows
    assert xs.max() < 24 and ys.max() < 26
    assert not changed[32:, :].any() and not changed[:, 24:].any()


def test_right_button_subtracts_and_undo_restores_exact_pixels(window):
    original = window.last_result.image.copy()
    drag(window, Tool.RECT, [(4.0, 4.0), (12.0, 12.0)], Qt.MouseButton.RightButton)
    edited = window.last_result.image.copy()
    assert window.stack.scene.edits[0].amount < 0
    assert not np.array_equal(edited, original)
    assert window.stack.labels() == ["Rectangle"]  # the whole drag is one history entry
    window.controls.undo.trigger()
    np.testing.assert_array_equal(window.last_result.image, original)
    window.controls.redo.trigger()
    np.testing.assert_array_equal(window.last_result.image, edited)
    np.testing.assert_array_equal(edited, direct_render(window.stack.scene).image)


def test_hold_space_compares_without_edits(window, qtbot):
    original = window.last_result.image.copy()
    drag(window, Tool.BRUSH, [(8.0, 8.0), (9.0, 12.0)])
    edited = window.last_result.image.copy()
    window.set_comparing(True)
    np.testing.assert_array_equal(window.last_result.image, original)
    window.set_comparing(False)
    np.testing.assert_array_equal(window.last_result.image, edited)
    window.controls.compare.trigger()  # the toolbar button does the same
    assert window.comparing
    np.testing.assert_array_equal(window.last_result.image, original)
    window.controls.compare.trigger()
    np.testing.assert_array_equal(window.last_result.image, edited)
    assert len(window.stack.scene.edits) == 1  # comparing never touches the document


def test_recipe_saved_and_applied_to_another_seed(window, tmp_path):
    drag(window, Tool.BRUSH, [(8.0, 8.0), (12.0, 10.0)])
    painted = window.stack.scene.edits
    path = tmp_path / "mouth.json"
    window.documents.save_recipe(str(path), "mouth")
    recipe = Recipe.from_json(path.read_text())
    assert recipe.edits == painted and recipe.name == "mouth"

    window.stack.reset(Scene(seed=7))
    plain = window.last_result.image.copy()
    assert window.documents.apply_recipe(str(path))
    assert window.stack.scene.edits == painted and window.stack.scene.seed == 7
    expected = direct_render(Scene(seed=7, edits=painted)).image
    np.testing.assert_array_equal(window.last_result.image, expected)
    assert not np.array_equal(expected, plain)


def test_bad_recipe_gives_one_line_error(window, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"format": "ganinterface.recipe", "version": 1, "edits": [{"kind": "nope"}]}')
    assert not window.documents.apply_recipe(str(path))
    assert window._ask.errors and "broken.json" in window._ask.errors[-1]
    assert "\n" not in window._ask.errors[-1]
    assert window.stack.scene.edits == ()


def test_hostile_checkpoint_shows_error_and_app_stays_usable(window, tmp_path):
    hostile = tmp_path / "evil.pkl"
    marker = tmp_path / "pwned"
    payload = type("Payload", (), {"__reduce__": lambda self: (
        exec, (f"open({str(marker)!r}, 'w').write('x')",))})()
    hostile.write_bytes(pickle.dumps({"G_ema": payload}))
    model_before = window.model
    window.load_model_async(str(hostile))
    assert not marker.exists()
    assert window.model is model_before
    assert window._ask.errors and "evil.pkl" in window._ask.errors[-1]
    window.latent_panel.seed.setValue(3)
    np.testing.assert_array_equal(window.last_result.image, direct_render(Scene(seed=3)).image)


def test_latent_panel_commands_render_and_undo(window):
    window.latent_panel.seed.setValue(5)
    window.latent_panel.psi.setValue(0.5)
    np.testing.assert_array_equal(window.last_result.image,
                                  direct_render(Scene(seed=5, truncation_psi=0.5)).image)
    window.latent_panel.noise_mode.setCurrentText("none")
    assert window.stack.scene.noise_mode == "none"
    assert window.stack.labels()[-1] == "Noise"
    window.stack.undo()
    window.stack.undo()
    assert window.stack.scene == Scene(seed=5)
    assert window.latent_panel.psi.value() == pytest.approx(1.0)


def test_latent_save_load_is_w_plus_and_honest(window, tmp_path):
    window.latent_panel.seed.setValue(11)
    seed_image = window.last_result.image.copy()
    assert "one vector used by all" in window.latent_panel.latent_label.text()
    path = tmp_path / "latent.npy"
    window.documents.save_latent(str(path))
    saved = np.load(path)
    assert saved.shape == (window.model.shape.num_ws, window.model.shape.w_dim)
    window.latent_panel.seed.setValue(12)
    window.documents.load_latent(str(path))
    assert window.stack.scene.w is not None
    assert "W+" in window.latent_panel.latent_label.text()
    np.testing.assert_array_equal(window.last_result.image, seed_image)
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((3, 5), np.float32))
    window.documents.load_latent(str(bad))
    assert "does not fit this model" in window._ask.errors[-1]


def test_rank_channels_by_region_and_select_top(window):
    drag(window, Tool.REGION, [(4.0, 30.0), (28.0, 50.0)])
    window.channel_finder.rank()
    features = window.features_panel.features()
    channels, height, width = features.shape
    inside = np.zeros((height, width), bool)
    inside[int(30 / 64 * height):int(np.ceil(50 / 64 * height)),
           int(4 / 32 * width):int(np.ceil(28 / 32 * width))] = True
    naive = [(features[c][inside].mean() - features[c][~inside].mean()) / (features[c].std() + 1e-8)
             for c in range(channels)]
    table_first = int(window.features_panel.ranking.item(0, 0).text())
    assert table_first == int(np.argmax(naive))
    window.features_panel.top_count.setValue(3)
    window.features_panel.select_top.click()
    assert set(window.features_panel.selected_channels()) == set(window.features_panel._ranked[:3])
    assert window.canvas.region is not None and window.canvas.region_item.isVisible()
    window.controls.clear_region.trigger()  # Esc
    assert window.canvas.region is None and window.channel_view.canvas.region is None
    assert not window.canvas.region_item.isVisible()


def test_tile_click_opens_channel_and_overlay(window):
    window.features_panel._tile_clicked(5, Qt.KeyboardModifier.NoModifier)
    assert window.channel_view.channel == 5
    values = window.features_panel.features()[5]
    np.testing.assert_array_equal(window.channel_view.values, values)
    shown = window.channel_view.canvas.image_item.image
    assert shown.shape == values.shape + (3,)
    strongest = np.unravel_index(np.argmax(np.abs(values)), values.shape)
    full_colour = (0, 136, 55) if values[strongest] > 0 else (202, 0, 32)  # palette ends
    assert tuple(shown[strongest]) == full_colour
    window.features_panel.overlay.setChecked(True)
    assert window.canvas.overlay_item.isVisible()
    window.features_panel._tile_clicked(7, Qt.KeyboardModifier.ControlModifier)
    window.features_panel._tile_clicked(9, Qt.KeyboardModifier.ControlModifier)
    assert window.features_panel.selected_channels() == (7, 9)
    assert window.features_panel.selected.text() == "7, 9"


def test_edit_stack_hide_reweight_retarget_reorder_delete(window):
    drag(window, Tool.RECT, [(2.0, 2.0), (10.0, 10.0)])
    drag(window, Tool.RECT, [(14.0, 20.0), (20.0, 30.0)])
    panel = window.edits_panel
    assert panel.list.count() == 2, "two strokes are two rows, not one recipe"
    assert [e.name for e in window.stack.scene.edits] == ["rectangle 1", "rectangle 2"]
    first, second = window.stack.scene.edits
    panel.list.item(0).setCheckState(Qt.CheckState.Unchecked)
    assert window.stack.scene.edits[0].enabled is False
    np.testing.assert_array_equal(window.last_result.image,
                                  direct_render(Scene(edits=(second,))).image)
    panel.list.setCurrentRow(1)
    panel.amount.setValue(-1.5)
    assert window.stack.scene.edits[1].amount == -1.5
    panel.channels.setText("1-3")
    panel.channels.editingFinished.emit()
    assert window.stack.scene.edits[1].channels == (1, 2, 3)
    panel.name.setText("mouth")
    panel.name.editingFinished.emit()
    assert window.stack.scene.edits[1].name == "mouth" and "“mouth”" in panel.list.item(1).text()
    panel.up.click()
    assert window.stack.scene.edits[0].channels == (1, 2, 3)
    panel.delete.click()
    assert len(window.stack.scene.edits) == 1 and window.stack.scene.edits[0].enabled is False


def test_a_recipes_per_channel_edits_are_one_row_of_the_edit_stack(window):
    drag(window, Tool.RECT, [(2.0, 2.0), (10.0, 10.0)])
    mask = Mask((Rect(0.3, 0.6, 0.7, 0.7),))
    recipe = Recipe(name="open mouth", edits=tuple(
        FeatureEdit(LAYER, (c,), mask, amount, name="open mouth")
        for c, amount in ((1, 0.5), (4, -0.25), (9, 1.0))))
    window.stack.push(cmd.apply_recipe(recipe))
    panel = window.edits_panel
    assert panel.list.count() == 2
    assert "“open mouth”  3 edits on b32.conv1" in panel.list.item(1).text()
    panel.list.setCurrentRow(1)
    assert panel.amount.prefix() == "×" and panel.amount.value() == 1.0
    assert not panel.channels.isEnabled()
    panel.amount.setValue(0.5)
    panel.amount.setValue(2.0)  # factors are relative to the recipe as it was selected
    assert [e.amount for e in window.stack.scene.edits[1:]] == [1.0, -0.5, 2.0]
    assert panel.amount.value() == 2.0 and panel.list.currentRow() == 1
    np.testing.assert_array_equal(window.last_result.image, direct_render(window.stack.scene).image)
    panel.list.item(1).setCheckState(Qt.CheckState.Unchecked)
    assert [e.enabled for e in window.stack.scene.edits] == [True, False, False, False]
    panel.up.click()
    assert [e.name for e in window.stack.scene.edits] == ["open mouth"] * 3 + ["rectangle 1"]
    assert panel.list.currentRow() == 0
    panel.delete.click()
    assert [e.name for e in window.stack.scene.edits] == ["rectangle 1"]
    window.controls.undo.trigger()
    assert len(window.stack.scene.edits) == 4


def test_a_copy_recipe_shows_as_a_fill_and_blends_with_its_strength(window):
    from ganinterface.engine.kinds import FeatureCopy

    mask = Mask((Rect(0.2, 0.1, 0.8, 0.4, softness=0.3),))
    copy = FeatureCopy(LAYER, mask, scale=0.7, centre=(0.5, 0.4), name="remove hair band")
    window.stack.push(cmd.apply_recipe(Recipe(edits=(copy,), name="remove hair band")))
    panel = window.edits_panel
    assert panel.list.count() == 1
    assert "“remove hair band” Fill b32.conv1 from ×0.7" in panel.list.item(0).text()
    np.testing.assert_array_equal(window.last_result.image, direct_render(window.stack.scene).image)
    changed = window.last_result.image
    panel.list.setCurrentRow(0)
    assert panel.amount.isEnabled() and "copied features" in panel.amount.toolTip()
    panel.amount.setValue(0.0)
    assert window.stack.scene.edits[0].amount == 0.0
    np.testing.assert_array_equal(window.last_result.image, direct_render(Scene()).image)
    assert not np.array_equal(changed, window.last_result.image)


def test_keep_the_rest_is_set_on_a_recipes_row_and_undone_in_one_step(window):
    from ganinterface.engine.kinds import DirectionEdit, FeatureCopy

    mask = Mask((Rect(0.3, 0.55, 0.7, 0.75, softness=0.2),))
    recipe = Recipe(name="mouth", edits=(
        FeatureEdit("b8.conv1", (1, 4), mask, 3.0, name="mouth"),  # early: spills far
        FeatureCopy(LAYER, mask, scale=0.6, name="mouth")))
    window.stack.push(cmd.apply_recipe(recipe))
    direction = DirectionEdit(np.ones(window.model.shape.w_dim, np.float32), 0.5)
    window.stack.push(cmd.apply_recipe(Recipe(edits=(direction,))))
    panel = window.edits_panel
    panel.list.setCurrentRow(1)
    assert not panel.keep_rest.isEnabled()  # a direction has no region to keep the rest around
    panel.list.setCurrentRow(0)
    assert panel.keep_rest.isEnabled() and not panel.keep_rest.isChecked()
    spilled = window.last_result.image.copy()
    panel.keep_rest.setChecked(True)
    assert [getattr(e, "keep_rest", None) for e in window.stack.scene.edits] == [True, True, None]
    assert panel.list.item(0).text().endswith("▣") and panel.keep_rest.isChecked()
    assert "▣ changes only its region" in panel.list.item(0).toolTip()
    kept = window.last_result.image
    np.testing.assert_array_equal(kept, direct_render(window.stack.scene).image)
    assert not np.array_equal(kept, spilled)
    # the rows above the region are the picture with the direction alone
    alone = direct_render(Scene(edits=(direction,))).image
    np.testing.assert_array_equal(kept[:24], alone[:24])
    assert not np.array_equal(spilled[:24], alone[:24])
    window.controls.undo.trigger()
    assert not any(e.keep_rest for e in window.stack.scene.edits[:2])
    np.testing.assert_array_equal(window.last_result.image, spilled)


def test_a_fills_scale_is_edited_in_the_inspector_and_undone_in_one_step(window):
    from ganinterface.engine.kinds import FeatureCopy

    mask = Mask((Rect(0.2, 0.3, 0.8, 0.6, softness=0.2),))
    window.stack.push(cmd.apply_recipe(Recipe(edits=(FeatureCopy(LAYER, mask, scale=1.8),))))
    panel = window.edits_panel
    panel.list.setCurrentRow(0)
    assert panel.fill_scale.isEnabled() and panel.fill_scale.value() == pytest.approx(1.8)
    before = window.last_result.image.copy()
    panel.fill_scale.setValue(1.2)
    panel.fill_scale.setValue(0.6)
    panel.fill_scale.editingFinished.emit()
    assert window.stack.scene.edits[0].scale == pytest.approx(0.6)
    assert "from ×0.6" in panel.list.item(0).text()
    np.testing.assert_array_equal(window.last_result.image, direct_render(window.stack.scene).image)
    assert not np.array_equal(window.last_result.image, before)
    window.controls.undo.trigger()  # both steps of the spin box are one history entry
    assert window.stack.scene.edits[0].scale == pytest.approx(1.8)
    np.testing.assert_array_equal(window.last_result.image, before)
    drag(window, Tool.BRUSH, [(8.0, 8.0)])  # a paint edit has no fill scale
    panel.list.setCurrentRow(1)
    assert not panel.fill_scale.isEnabled()


def test_fill_tool_copies_the_rectangle_from_beside_it_at_the_layer_and_after(window):
    before = window.last_result.image.copy()
    window.controls.tools[Tool.FILL].trigger()
    assert window.canvas.tool is Tool.FILL
    drag(window, Tool.FILL, [(8.0, 40.0), (24.0, 52.0)])
    edits = window.stack.scene.edits
    layers = [info.name for info in window.model.shape.layers]
    assert [e.layer for e in edits] == layers[layers.index(LAYER):]
    assert {(e.kind, e.name) for e in edits} == {("feature_copy", "fill 1")}
    row = window.edits_panel.list.item(0).text()  # one row, short enough to read
    assert row.endswith(f"“fill 1”  {len(edits)} edits on {LAYER} … {layers[-1]} ({len(edits)} layers)")
    assert window.stack.labels()[-1] == "Fill region"
    assert "Filled with what lies" in window.statusBar().currentMessage()
    np.testing.assert_array_equal(window.last_result.image, direct_render(window.stack.scene).image)
    changed = np.any(window.last_result.image != before, axis=2)
    assert changed[42:50, 10:22].mean() > 0.5 and not changed[:30, :].any()
    drag(window, Tool.FILL, [(8.0, 8.0), (8.0, 20.0)])  # no width: no edit
    assert window.stack.scene.edits == edits
    filled, source = window.canvas.filled  # outlined, as the region tool outlines its box
    dx, dy = edits[0].offset
    assert filled == pytest.approx((8 / 32, 40 / 64, 24 / 32, 52 / 64))
    assert source == pytest.approx((filled[0] + dx, filled[1] + dy, filled[2] + dx, filled[3] + dy))
    assert window.canvas._filled_item.isVisible() and window.canvas._source_item.isVisible()
    window.controls.undo.trigger()
    assert window.canvas.filled is None and not window.canvas._filled_item.isVisible()


def test_session_save_open_dirty_title_and_recent(window, tmp_path):
    window.latent_panel.seed.setValue(4)
    drag(window, Tool.BRUSH, [(8.0, 8.0)])
    assert window.windowTitle().startswith("untitled") and window.isWindowModified()
    path = tmp_path / "scene.json"
    assert window.documents.write_scene(path)
    assert window.windowTitle().startswith("scene.json") and not window.isWindowModified()
    saved = window.stack.scene
    image = window.last_result.image.copy()
    window.latent_panel.seed.setValue(9)
    assert window.isWindowModified()
    assert window.documents.open_scene(path)
    assert window.stack.scene == saved and not window.stack.can_undo()
    np.testing.assert_array_equal(window.last_result.image, image)
    assert window.documents.recent()[0] == str(path.resolve())
    assert not window.documents.open_scene(tmp_path / "missing.json")
    assert "missing.json" in window._ask.errors[-1]


def test_a_png_scene_is_named_in_the_title_and_saved_as_json_beside_it(window, tmp_path,
                                                                       monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    from ganinterface.export.images import save_png

    png = tmp_path / "portrait.png"
    save_png(png, direct_render(Scene(seed=6)).image, Scene(seed=6))
    assert window.documents.open_scene(png)
    assert window.windowTitle() == "portrait.png[*] — ganinterface" and not window.isWindowModified()
    drag(window, Tool.RECT, [(4.0, 4.0), (12.0, 12.0)])
    assert window.isWindowModified()
    suggested = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda _parent, _title, name, _filter: (
        suggested.append(name) or str(tmp_path / name), ""))
    window.controls.save_scene.trigger()  # a PNG is not overwritten: Save asks where
    assert suggested == ["portrait.json"]
    assert Scene.from_json((tmp_path / "portrait.json").read_text()) == window.stack.scene
    assert window.windowTitle() == "portrait.json[*] — ganinterface" and not window.isWindowModified()


def test_unsaved_changes_are_saved_kept_or_dropped_as_answered(window, tmp_path):
    from PySide6.QtWidgets import QMessageBox

    path = tmp_path / "scene.json"
    assert window.documents.write_scene(path)
    window.latent_panel.seed.setValue(8)
    window._ask.answer = QMessageBox.StandardButton.Cancel
    assert not window.documents.maybe_save()
    window._ask.answer = QMessageBox.StandardButton.Save
    assert window.documents.maybe_save() and not window.isWindowModified()
    assert Scene.from_json(path.read_text()).seed == 8


def test_another_model_starts_an_untitled_document_that_cannot_overwrite_the_last(window, tmp_path):
    from ganinterface.models.native import save_native

    drag(window, Tool.RECT, [(4.0, 4.0), (12.0, 12.0)])
    path = tmp_path / "scene.json"
    assert window.documents.write_scene(path)
    checkpoint = tmp_path / "tiny.safetensors"
    save_native(tiny_generator(), checkpoint)
    window.load_model_async(str(checkpoint))
    assert window.model.checkpoint == str(checkpoint) and window.stack.scene.edits == ()
    assert window.windowTitle() == "untitled[*] — ganinterface"
    assert window.documents.scene_path is None  # Save asks for a new file


def test_background_thread_delivers_newest_result_on_gui_thread(qtbot, tmp_path):
    with open_window(qtbot, tmp_path, force_sync=False) as window:
        threads: list[bool] = []
        window.bridge.rendered.connect(
            lambda *_: threads.append(threading.current_thread() is threading.main_thread()))
        for seed in range(1, 30):
            window.latent_panel.seed.setValue(seed)
        assert window.bridge.executor.wait_idle(20)
        qtbot.waitUntil(lambda: window.last_result is not None
                        and np.array_equal(window.last_result.image, direct_render(Scene(seed=29)).image),
                        timeout=10_000)
        assert threads and all(threads)
        stats = window.bridge.executor.stats
        assert stats.delivered < stats.submitted  # stale work was dropped, not queued


def test_direction_slider_moves_latent_and_undoes_as_one_step(window, tmp_path):
    rng = np.random.RandomState(1)
    vector = rng.randn(window.model.shape.w_dim).astype(np.float32)
    path = tmp_path / "smile.npy"
    np.save(path, vector)
    assert window.directions_panel.load(str(path))
    row = window.directions_panel._rows[0]
    for value in (0.5, 1.0, 1.5):
        row.amount.setValue(value)
    row.amount.sliderReleased.emit()
    edit = window.stack.scene.edits[0]
    assert edit.amount == 1.5 and edit.name == "smile"
    assert window.stack.labels() == ["Add direction smile", "Direction amount"]
    base = direct_render(Scene()).ws
    np.testing.assert_allclose(window.last_result.ws, base + 1.5 * vector[None, :], rtol=1e-5, atol=1e-5)
    row.first.setValue(4)
    assert window.stack.scene.edits[0].first == 4
    window.stack.undo()
    window.stack.undo()
    assert window.stack.scene.edits[0].amount == 0.0
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros(7, np.float32))
    assert not window.directions_panel.load(str(wrong))
    assert "wrong.npy" in window._ask.errors[-1]


def test_a_style_space_direction_slides_like_a_w_direction(window, tmp_path):
    from ganinterface.engine.directions import StyleDirection, save_style_direction

    offsets = (("b16.conv0", 3, 1.0), (LAYER, 5, -0.5))
    path = save_style_direction(tmp_path / "band.json", StyleDirection(offsets, name="band"))
    assert window.directions_panel.load(str(path))
    row = window.directions_panel._rows[0]
    for value in (0.5, 2.0):
        row.amount.setValue(value)
    row.amount.sliderReleased.emit()
    edit = window.stack.scene.edits[0]
    assert (edit.kind, edit.amount, edit.offsets) == ("style_channels", 2.0, offsets)
    assert window.stack.labels() == ["Add direction band", "Direction amount"]
    np.testing.assert_array_equal(window.last_result.image,
                                  direct_render(Scene(edits=(edit,))).image)
    window.stack.undo()
    assert window.stack.scene.edits[0].amount == 0.0


def test_mean_difference_of_tagged_seeds(window):
    panel = window.directions_panel
    for seed, sign in ((1, +1), (2, +1), (3, -1)):
        window.latent_panel.seed.setValue(seed)
        panel.tag(sign)
    panel.task.executor.force_sync = True
    panel.compute("mean")
    edit = window.stack.scene.edits[-1]
    ws = {s: direct_render(Scene(seed=s)).ws[0] for s in (1, 2, 3)}
    np.testing.assert_allclose(edit.direction, (ws[1] + ws[2]) / 2 - ws[3], rtol=1e-4, atol=1e-5)


def test_animation_frames_and_preview_leave_document_alone(window):
    panel = window.animation_panel
    panel.add_keyframe(2)
    panel.add_keyframe(5)
    panel.frames_count.setValue(5)
    frames = panel.frames()
    assert len(frames) == 5
    ws2, ws5 = direct_render(Scene(seed=2)).ws, direct_render(Scene(seed=5)).ws
    np.testing.assert_allclose(frames[2].w, (ws2 + ws5) / 2, rtol=1e-5, atol=1e-6)
    panel.position.setValue(4)
    np.testing.assert_array_equal(window.last_result.image, direct_render(frames[4]).image)
    panel.stop()
    np.testing.assert_array_equal(window.last_result.image, direct_render(Scene()).image)
    assert not window.stack.can_undo()
    panel.position.setValue(2)  # previewing again; then a document change ends the preview
    window.latent_panel.seed.setValue(6)
    np.testing.assert_array_equal(window.last_result.image, direct_render(Scene(seed=6)).image)
    window.stack.undo()
    panel.mode.setCurrentText("Slerp in Z (seeds only)")
    assert len(panel.frames()) == 5
    np.testing.assert_allclose(panel.frames()[-1].w, ws5, rtol=1e-5, atol=1e-5)


def test_recipe_for_another_model_is_refused(window, tmp_path):
    path = tmp_path / "other.json"
    edit = FeatureEdit(LAYER, (0,), Mask((Rect(0.1, 0.1, 0.3, 0.3),)), 1.0)
    path.write_text(Recipe(edits=(edit,), model_hash="0" * 64).to_json())
    assert not window.documents.apply_recipe(str(path))
    assert "made for another model" in window._ask.errors[-1]
    assert window.stack.scene.edits == ()


def test_anchored_stroke_resample_and_style_mix_are_scene_edits(window):
    window.features_panel.set_selected_channels((2, 3))
    window.controls.anchor.setChecked(True)
    drag(window, Tool.BRUSH, [(8.0, 8.0), (10.0, 12.0)])
    edit = window.stack.scene.edits[0]
    assert edit.anchor is not None and edit.anchor.channels == (2, 3) and edit.anchor.layer == LAYER
    # drawn on this portrait, the anchor sits where the channels peak here: the mask does not move
    unanchored = FeatureEdit(edit.layer, edit.channels, edit.mask, edit.amount)
    np.testing.assert_array_equal(window.last_result.image,
                                  direct_render(Scene(edits=(unanchored,))).image)
    before = window.last_result.image.copy()
    drag(window, Tool.RESAMPLE, [(16.0, 40.0), (30.0, 60.0)])
    resample = window.stack.scene.edits[1]
    assert resample.kind == "region_resample" and resample.layer == LAYER
    changed = np.any(window.last_result.image != before, axis=2)
    assert changed[44:56, 20:28].any() and not changed[:30, :].any()
    window.edits_panel.list.setCurrentRow(1)
    window.edits_panel.new_fill.click()
    assert window.stack.labels()[-1] == "New fill"  # (a new random seed: 1 in 100000 to repeat)
    assert window.stack.scene.edits[1].seed != resample.seed
    window.painter.style_mix(9, 4)
    mix = window.stack.scene.edits[-1]
    assert (mix.kind, mix.seed, mix.first) == ("style_mix", 9, 4)
    np.testing.assert_array_equal(window.last_result.image, direct_render(window.stack.scene).image)


def test_actual_pixels_is_one_image_pixel_per_screen_pixel_and_readout(window, qtbot):
    window.resize(1000, 700)
    window.show()
    qtbot.waitExposed(window)
    window.canvas.actual_size()
    width, height = window.canvas.view.viewPixelSize()
    assert width == pytest.approx(1.0, abs=1e-6) and height == pytest.approx(1.0, abs=1e-6)
    window._hovered((5, 7))
    red, green, blue = window.last_result.image[7, 5]
    assert f"pixel (5, 7)   RGB {red} {green} {blue}" in window.readout.text()
    window.canvas.fit()
    assert window.canvas.view.viewPixelSize()[0] < 1.0  # the 64x32 image is enlarged to fit


def test_shipped_recipes_and_directions_of_the_built_in_model(window, tmp_path, monkeypatch):
    from ganinterface.engine.directions import StyleDirection, save_style_direction
    from ganinterface import bundled
    from ganinterface.ui.model_loading import shipped_files

    (tmp_path / "recipes").mkdir()
    (tmp_path / "directions" / "methods").mkdir(parents=True)
    edit = FeatureEdit(LAYER, (1, 2), Mask((Rect(0.3, 0.6, 0.7, 0.7),)), 2.0)
    (tmp_path / "recipes" / "open-mouth.json").write_text(Recipe(edits=(edit,)).to_json())
    np.save(tmp_path / "directions" / "hair_band.npy", np.ones(window.model.shape.w_dim, np.float32))
    (tmp_path / "directions" / "hair_band.json").write_text('{"format": "ganinterface.direction"}')
    save_style_direction(tmp_path / "directions" / "mouth-open.json",
                         StyleDirection(((LAYER, 1, 1.0),)))
    save_style_direction(tmp_path / "directions" / "methods" / "mouth-open.style-channels.json",
                         StyleDirection(((LAYER, 1, 1.0),)))
    monkeypatch.setattr(bundled, "checkpoints_dir", lambda: tmp_path)
    window.set_model(window.model)
    recipes = window.edits_panel.shipped.menu().actions()
    directions = window.directions_panel.shipped.menu().actions()
    assert [a.text() for a in recipes] == ["open mouth"]
    assert [a.text() for a in directions] == ["hair band", "mouth open"]
    recipes[0].trigger()
    directions[0].trigger()
    directions[1].trigger()
    assert window.stack.scene.edits[0] == edit
    assert [e.kind for e in window.stack.scene.edits[1:]] == ["direction", "style_channels"]
    user_model = dataclasses.replace(window.model, checkpoint="/elsewhere/model.pkl")
    assert shipped_files(user_model, "recipes") == []


def _mouse(widget, kind, point, button, buttons):
    from PySide6.QtCore import QPointF as Point
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    event = QMouseEvent(kind, Point(point), Point(widget.mapToGlobal(point)), button, buttons,
                        Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def test_real_mouse_drag_on_the_canvas_paints_with_the_brush(window, qtbot):
    from PySide6.QtCore import QEvent, QPointF

    window.resize(1000, 700)
    window.show()
    qtbot.waitExposed(window)
    window.canvas.fit()
    qtbot.wait(50)
    window.set_tool(Tool.BRUSH)
    viewport = window.canvas.viewport()

    def on_screen(x: float, y: float):
        scene_point = window.canvas.view.mapViewToScene(QPointF(x, y))
        return window.canvas.mapFromScene(scene_point)

    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    _mouse(viewport, QEvent.Type.MouseButtonPress, on_screen(8, 10), left, left)
    for step in range(1, 8):
        qtbot.wait(20)  # pyqtgraph drops mouse moves closer together than its rate limit
        _mouse(viewport, QEvent.Type.MouseMove, on_screen(8 + step, 10 + step), none, left)
    _mouse(viewport, QEvent.Type.MouseButtonRelease, on_screen(15, 17), left, none)
    assert len(window.stack.scene.edits) == 1
    points = window.stack.scene.edits[0].mask.shapes[0].points
    assert len(points) >= 2
    x0, y0 = points[-1]
    assert abs(x0 * 32 - 15) < 1.5 and abs(y0 * 64 - 17) < 1.5  # normalised image coordinates
    assert points[0] == pytest.approx((8 / 32, 10 / 64), abs=0.02)  # where the button went down

    # a rectangle dragged in one jump begins where the button went down, not where the drag
    # was recognised
    window.set_tool(Tool.RECT)
    _mouse(viewport, QEvent.Type.MouseButtonPress, on_screen(4, 6), left, left)
    qtbot.wait(20)
    _mouse(viewport, QEvent.Type.MouseMove, on_screen(20, 30), none, left)
    qtbot.wait(20)
    _mouse(viewport, QEvent.Type.MouseButtonRelease, on_screen(20, 30), left, none)
    (box,) = window.stack.scene.edits[-1].mask.shapes
    assert (box.x0 * 32, box.y0 * 64, box.x1 * 32, box.y1 * 64) == pytest.approx((4, 6, 20, 30), abs=0.6)
    assert window.stack.labels() == ["Brush stroke", "Rectangle"]  # each drag is one step


def test_rank_over_several_seeds_and_propose_edit_from_examples(window):
    from ganinterface.engine.analysis import propose_feature_edit, rank_channels
    from ganinterface.engine.masks import rasterize

    drag(window, Tool.REGION, [(8.0, 30.0), (24.0, 46.0)])
    region_box = window.canvas.region
    stacked = {s: direct_render(Scene(seed=s), (LAYER,)).features[LAYER] for s in range(4)}
    region = rasterize(Mask((Rect(*region_box),)), 32, 16)

    window.features_panel.rank_seeds.setText("0-3")
    window.channel_finder.rank()
    expected = rank_channels(np.stack([stacked[s] for s in range(4)]), region)
    assert window.features_panel._ranked == [s.channel for s in expected]
    single = [s.channel for s in rank_channels(stacked[0], region)]
    assert window.features_panel._ranked != single  # several seeds do change the ranking

    window.features_panel.seeds_a.setText("0,1")
    window.features_panel.seeds_b.setText("2,3")
    window.features_panel.top_count.setValue(4)
    window.channel_finder.propose()
    proposal = propose_feature_edit(np.stack([stacked[0], stacked[1]]),
                                    np.stack([stacked[2], stacked[3]]), region, top_k=4)
    edits = window.stack.scene.edits
    assert window.stack.labels() == ["Proposed edit"]
    assert sorted(c for e in edits for c in e.channels) == sorted(proposal.channels)
    positive = [a for a in proposal.amounts if a > 0]
    if positive:
        assert edits[0].amount == pytest.approx(np.mean(positive))
    window.features_panel.seeds_b.setText("x")
    window.channel_finder.propose()
    assert window._ask.errors


def test_painting_on_the_channel_view_lands_at_the_same_place(window):
    from PySide6.QtCore import QPointF

    window.feature_views.open_channel(3)
    window.set_tool(Tool.RECT)
    canvas = window.channel_view.canvas  # 32 x 16 channel pixels for the 64 x 32 image
    canvas._drag(QPointF(4.0, 8.0), Qt.MouseButton.LeftButton, True, False)
    canvas._drag(QPointF(12.0, 16.0), Qt.MouseButton.LeftButton, False, True)
    rect = window.stack.scene.edits[0].mask.shapes[0]
    assert (rect.x0, rect.y0, rect.x1, rect.y1) == (0.25, 0.25, 0.75, 0.5)
    assert window.stack.labels() == ["Rectangle"]


def test_space_key_held_shows_the_image_without_edits(window, qtbot):
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QKeyEvent
    from PySide6.QtWidgets import QApplication

    window.show()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=3000)
    original = window.last_result.image.copy()
    drag(window, Tool.RECT, [(4.0, 4.0), (20.0, 30.0)])
    edited = window.last_result.image.copy()
    window.canvas.setFocus()
    QApplication.sendEvent(window.canvas, QKeyEvent(QEvent.Type.KeyPress, Qt.Key.Key_Space,
                                                    Qt.KeyboardModifier.NoModifier, " "))
    assert window.comparing
    np.testing.assert_array_equal(window.last_result.image, original)
    QApplication.sendEvent(window.canvas, QKeyEvent(QEvent.Type.KeyRelease, Qt.Key.Key_Space,
                                                    Qt.KeyboardModifier.NoModifier, " "))
    assert not window.comparing
    np.testing.assert_array_equal(window.last_result.image, edited)
    window.latent_panel.seed.setFocus()  # typing a space into a field does not compare
    QApplication.sendEvent(window.latent_panel.seed, QKeyEvent(
        QEvent.Type.KeyPress, Qt.Key.Key_Space, Qt.KeyboardModifier.NoModifier, " "))
    assert not window.comparing


def test_scale_modes_and_colour_blind_palette_change_the_grid(window):
    from ganinterface.engine.colormap import diverging_lut

    features = window.features_panel.features()
    item = window.features_panel.mosaic.image_item
    shared = item.image.copy()
    window.features_panel.scale.setCurrentIndex(1)  # per-channel
    per_channel = item.image
    # independent check: each tile divided by its own 99th percentile of |value|
    layout, zoom = window.features_panel.mosaic.layout_info, window.features_panel.mosaic.zoom
    top, left = layout.tile_origin(7)
    tile = per_channel[top:top + layout.tile_height, left:left + layout.tile_width]
    scale = np.percentile(np.abs(features[7]), 99)
    expected = np.clip(features[7] / scale, -1, 1)
    np.testing.assert_allclose(tile, np.kron(expected, np.ones((zoom, zoom))), rtol=1e-5, atol=1e-6)
    assert not np.array_equal(np.nan_to_num(shared), np.nan_to_num(per_channel))
    window.features_panel.palette.setCurrentIndex(1)
    np.testing.assert_array_equal(item.lut, diverging_lut("colour-blind"))


def test_copy_paste_latent_through_the_clipboard(window):
    window.latent_panel.seed.setValue(21)
    image = window.last_result.image.copy()
    window.documents.copy_latent()
    window.latent_panel.seed.setValue(22)
    window.documents.paste_latent()
    assert window.stack.scene.w is not None and window.stack.scene.w.shape == (10, 64)
    np.testing.assert_array_equal(window.last_result.image, image)
    from PySide6.QtGui import QGuiApplication

    QGuiApplication.clipboard().setText("not a latent")
    window.documents.paste_latent()
    assert "no latent" in window._ask.errors[-1]


def test_window_layout_is_remembered(qtbot, tmp_path):
    with open_window(qtbot, tmp_path) as first:
        first.show()
        first.channel_dock.hide()
        first.edits_dock.hide()
        first.close()
        assert first.settings.value("geometry") is not None
    with open_window(qtbot, tmp_path) as second:
        second.show()
        assert not second.channel_dock.isVisible() and not second.edits_dock.isVisible()
        assert second.latent_dock.isVisible()


def test_failed_render_shows_its_error_and_keeps_the_last_image(window):
    image = window.last_result.image.copy()
    bad = FeatureEdit("no.such.layer", (0,), Mask((Rect(0.1, 0.1, 0.2, 0.2),)), 1.0)
    window.stack.push(cmd.add_edit(bad))
    assert window.controls.render_label.text().startswith("Render failed:")
    assert "no.such.layer" in window.controls.render_label.text()
    np.testing.assert_array_equal(window.canvas.image_item.image, image)
    window.stack.undo()
    assert not window.controls.render_label.text().startswith("Render failed")


def test_a_morph_from_a_picture_with_fine_detail_blends_its_maps_and_a_seed_morph_drops_them(window, tmp_path):
    from ganinterface.export.userfiles import LatentFile, write_latent_file

    panel = window.animation_panel
    generator = tiny_generator()
    latent = direct_render(Scene(seed=8)).ws
    info = generator.layers[generator.layer_index("b4.conv1")]
    detail = {"b4.conv1": np.full((info.channels, info.height, info.width), 0.8, np.float32)}
    write_latent_file(tmp_path / "me.npz", LatentFile(w=latent, detail=detail))
    window.stack.reset(Scene(seed=3, w=latent, detail_maps=detail))  # the picture is the scene
    panel.add_keyframe(1)
    assert panel.add_latent_file(str(tmp_path / "me.npz"))
    assert panel.list.item(1).text() == "2. me.npz (W+, fine detail)"
    panel.frames_count.setValue(3)
    first, middle, last = panel.frames()
    assert first.detail_maps["b4.conv1"].max() == 0  # the seed has no detail: not the scene's
    assert np.allclose(middle.detail_maps["b4.conv1"], 0.4)
    assert np.array_equal(last.detail_maps["b4.conv1"], detail["b4.conv1"])
    np.testing.assert_allclose(last.w, latent, atol=1e-6)  # lerp at 1 is b up to rounding
    np.testing.assert_array_equal(Renderer(generator).render(last).image,
                                  Renderer(generator).render(Scene(w=last.w, detail_maps=detail)).image)
    panel.mode.setCurrentText("Slerp in Z (seeds only)")
    panel._clear()
    panel.add_keyframe(1)
    panel.add_keyframe(2)
    assert all(frame.detail_maps is None for frame in panel.frames())


def test_latent_file_keyframes_play_and_strength_curve(window, qtbot, tmp_path):
    panel = window.animation_panel
    latent = direct_render(Scene(seed=8)).ws
    np.save(tmp_path / "key.npy", latent)
    panel.add_keyframe(1)
    assert panel.add_latent_file(str(tmp_path / "key.npy"))
    np.save(tmp_path / "bad.npy", np.zeros(3, np.float32))
    assert not panel.add_latent_file(str(tmp_path / "bad.npy"))
    assert "bad.npy" in window._ask.errors[-1]
    panel.frames_count.setValue(3)
    frames = panel.frames()
    np.testing.assert_allclose(frames[-1].w, latent, atol=1e-6)
    panel.fps.setValue(60)
    panel.play.setChecked(True)
    qtbot.waitUntil(lambda: panel.position.value() == 2, timeout=5000)
    panel.play.setChecked(False)
    assert not panel.timer.isActive()
    np.testing.assert_array_equal(window.last_result.image, direct_render(Scene()).image)

    edit = FeatureEdit(LAYER, (0, 1), Mask((Rect(0.2, 0.2, 0.6, 0.4),)), 4.0)
    window.stack.reset(Scene(seed=2, edits=(edit,)))
    panel.mode.setCurrentText("Edit strength curve")
    panel.curve.setCurrentText("ping-pong")
    panel.cycles.setValue(1.0)
    panel.frames_count.setValue(4)
    amounts = [f.edits[0].amount if f.edits else 0.0 for f in panel.frames()]
    assert amounts == pytest.approx([0.0, 2.0, 4.0, 2.0])  # 0 -> 1 -> 0, looping, times 4.0
    assert all(f.seed == 2 for f in panel.frames())


def test_huge_layers_are_shown_at_every_kth_pixel(window, monkeypatch):
    from ganinterface.ui import features_panel

    monkeypatch.setattr(features_panel, "MAX_GRID_VALUES", 64 * 32 * 16 // 4)
    features = window.features_panel.features()
    window.features_panel.show_features(features)
    layout, zoom = window.features_panel.mosaic.layout_info, window.features_panel.mosaic.zoom
    assert (layout.tile_height, layout.tile_width) == (16 * zoom, 8 * zoom)  # every 2nd of 32 x 16
    window.features_panel._show_hover((3, 5, 4, float(features[3, 10, 8])))
    assert "at (8, 10)" in window.features_panel.readout.text()


def test_conditional_model_gets_a_class_and_the_class_spin_renders_it(qtbot, tmp_path):
    from ganinterface.models.stylegan2 import StyleGAN2Generator
    from ganinterface.ui.model_loading import LoadedModel, shape_of

    torch_generator = StyleGAN2Generator(z_dim=16, c_dim=3, w_dim=16, img_resolution=16,
                                         img_channels=3, mapping_kwargs={"num_layers": 2},
                                         channel_base=256, channel_max=16).eval()

    def loader(path):
        return LoadedModel(Renderer(torch_generator), shape_of(torch_generator, "cond"), None)

    with open_window(qtbot, tmp_path, loader=loader) as window:
        assert window.stack.scene.class_index == 0
        assert window.latent_panel.class_index.isEnabled()
        assert window.latent_panel.class_index.minimum() == 0
        window.latent_panel.class_index.setValue(2)
        assert window.stack.scene.class_index == 2
        expected = Renderer(torch_generator).render(Scene(class_index=2)).image
        np.testing.assert_array_equal(window.last_result.image, expected)
        assert not np.array_equal(expected, Renderer(torch_generator).render(Scene(class_index=0)).image)


def test_truncation_cutoff_truncates_only_the_first_ws(window):
    window.latent_panel.psi.setValue(0.0)
    window.latent_panel.cutoff.setValue(4)
    scene = window.stack.scene
    assert (scene.truncation_psi, scene.truncation_cutoff) == (0.0, 4)
    ws, free = window.last_result.ws, direct_render(Scene()).ws
    w_avg = tiny_generator().w_avg.numpy()
    np.testing.assert_allclose(ws[:4], np.broadcast_to(w_avg, ws[:4].shape), atol=1e-6)
    np.testing.assert_allclose(ws[4:], free[4:], atol=1e-6)
    window.latent_panel.cutoff.setValue(0)
    assert window.stack.scene.truncation_cutoff is None


def test_strength_curve_can_animate_a_recipe_file(window, tmp_path):
    panel = window.animation_panel
    edit = FeatureEdit(LAYER, (0,), Mask((Rect(0.2, 0.2, 0.6, 0.4),)), 2.0)
    path = tmp_path / "talk.json"
    path.write_text(Recipe(edits=(edit,), name="talk").to_json())
    window.stack.reset(Scene(seed=4))
    panel.mode.setCurrentText("Edit strength curve")
    panel.curve.setCurrentText("linear")
    panel.frames_count.setValue(3)
    assert panel.frames() == []  # no edits and no recipe: nothing to animate
    assert panel.set_recipe(str(path))
    assert [f.edits[0].amount for f in panel.frames()] == pytest.approx([0.0, 1.0, 2.0])
    assert panel.recipe_button.text() == "talk.json"
    (tmp_path / "bad.json").write_text("{")
    assert not panel.set_recipe(str(tmp_path / "bad.json"))
    assert panel.recipe is not None  # a bad file leaves the chosen recipe


def test_region_covering_the_whole_layer_gives_an_error_not_a_crash(window):
    drag(window, Tool.REGION, [(3.0, 3.0), (3.0, 3.0)])  # a click marks nothing
    assert window.canvas.region is None
    drag(window, Tool.REGION, [(0.0, 0.0), (32.0, 64.0)])
    window.channel_finder.rank()
    assert "region must cover part of the layer" in window._ask.errors[-1]


def test_a_latent_saved_as_npz_keeps_the_detail_maps_and_loads_back_as_the_same_picture(window, tmp_path):
    generator = tiny_generator()
    info = generator.layers[generator.layer_index("b4.conv1")]
    detail = {"b4.conv1": np.full((info.channels, info.height, info.width), 0.6, np.float32)}
    w = direct_render(Scene(seed=5)).ws
    window.stack.reset(Scene(w=w, detail_maps=detail))
    shown = window.last_result.image.copy()
    assert window.documents.save_latent(str(tmp_path / "me.npz"))
    window.stack.reset(Scene(seed=9))
    window.documents.load_latent(str(tmp_path / "me.npz"))
    assert np.array_equal(window.stack.scene.detail_maps["b4.conv1"], detail["b4.conv1"])
    assert window.latent_panel.latent_label.text().endswith(
        "one vector per layer; a detail map on b4.conv1 keeps the picture's fine detail")
    np.testing.assert_array_equal(window.last_result.image, shown)


def test_saving_into_a_missing_folder_gives_one_line_errors(window, tmp_path):
    missing = tmp_path / "nope" / "x"
    assert not window.documents.save_latent(str(missing) + ".npy")
    assert not window.documents.save_recipe(str(missing) + ".json")
    assert not window.documents.write_scene(missing.with_suffix(".json"))
    assert len(window._ask.errors) == 3
    assert all("\n" not in e and "x." in e for e in window._ask.errors)
    assert not (tmp_path / "nope").exists()


def test_dropping_a_scene_file_opens_it(window, tmp_path):
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    path = tmp_path / "dropped.json"
    path.write_text(Scene(seed=13, truncation_psi=0.8).to_json())
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, data, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    assert window.stack.scene == Scene(seed=13, truncation_psi=0.8)
    np.testing.assert_array_equal(window.last_result.image,
                                  direct_render(Scene(seed=13, truncation_psi=0.8)).image)


def test_direction_made_for_another_model_is_refused(window, tmp_path):
    from ganinterface.engine.directions import Direction, save_direction

    vector = np.ones(window.model.shape.w_dim, np.float32)
    save_direction(tmp_path / "other.npy", Direction(vector, name="other", model_hash="f" * 64))
    assert not window.directions_panel.load(str(tmp_path / "other.npy"))
    assert "made for another model" in window._ask.errors[-1]
    assert window.stack.scene.edits == ()


def test_changing_the_document_ends_comparing(window):
    drag(window, Tool.RECT, [(4.0, 4.0), (20.0, 30.0)])
    window.controls.compare.trigger()
    assert window.comparing
    window.latent_panel.seed.setValue(3)
    assert not window.comparing and not window.controls.compare.isChecked()
    np.testing.assert_array_equal(window.last_result.image,
                                  direct_render(window.stack.scene).image)


@pytest.mark.slow  # waits for a lingering worker
def test_the_loading_message_ends_when_the_model_arrives_though_the_worker_lingers(qtbot, tmp_path):
    """"Loading the built-in model… N s" stayed, counting, with the model loaded and rendering: the
    worker was still finishing up when its result arrived, and the window asked it if it was busy."""
    with open_window(qtbot, tmp_path, force_sync=False) as window:
        first = window.model
        # on the worker thread, right after it sent the result: a thread descheduled there
        window.loader_task.finished.connect(lambda *_: time.sleep(0.6),
                                            Qt.ConnectionType.DirectConnection)
        window.load_model_async(None)
        assert window.statusBar().currentMessage().startswith("Loading the built-in model… 0 s")
        qtbot.waitUntil(lambda: window.model is not first, timeout=10_000)
        qtbot.wait(1300)  # the worker is done lingering; the clock would have ticked twice
        assert not window.statusBar().currentMessage().startswith("Loading")


def test_a_model_superseded_while_its_result_was_on_the_way_is_not_applied(qtbot, tmp_path):
    from ganinterface.models.native import save_native

    checkpoint = tmp_path / "tiny.safetensors"
    save_native(tiny_generator(), checkpoint)
    edit = FeatureEdit(LAYER, (0,), Mask((Rect(0.2, 0.2, 0.5, 0.5),)), 2.0)
    scene_file = tmp_path / "scene.json"
    scene_file.write_text(Scene(checkpoint=str(checkpoint), seed=3, edits=(edit,)).to_json())
    with open_window(qtbot, tmp_path, force_sync=False) as window:
        window.load_model_async(None)
        assert window.loader_task.executor.wait_idle(10)  # its result waits for the GUI thread ...
        assert window.documents.open_scene(scene_file)  # ... when the scene asks for its model
        qtbot.waitUntil(lambda: window.model.checkpoint == str(checkpoint) and
                        window.bridge.executor.is_idle(), timeout=10_000)
        qtbot.wait(100)
        assert window.stack.scene.edits == (edit,) and window.stack.scene.seed == 3
        assert window.windowTitle() == "scene.json[*] — ganinterface"
        assert not window.statusBar().currentMessage().startswith("Loading")
        assert window.controls.busy.isHidden()
