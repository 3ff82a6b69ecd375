"""The window opens latent files (a projected picture's W or W+, and its noise maps) as one undo step."""

from __future__ import annotations

import numpy as np
import pytest

from ganinterface.engine.commands import add_edit
from ganinterface.engine.projection import ProjectionSettings
from ganinterface.engine.renderer import Renderer
from ganinterface.engine.scene import Scene
from ganinterface.export.userfiles import LatentFile, write_latent_file
from ganinterface.models.native import generator_hash
from ganinterface.ui.crop_view import VIEW_SIDE
from ganinterface.ui.projection_dialog import ProjectionDialog
from ui_support import open_window, tiny_generator


def test_a_latent_file_becomes_the_scene_and_undo_takes_it_back(qtbot, tmp_path):
    generator = tiny_generator()
    w = np.random.default_rng(0).standard_normal((generator.num_ws, generator.w_dim)).astype(np.float32)
    noise = {name: np.zeros(tuple(v.shape), np.float32) for name, v in generator.stored_noise().items()}
    write_latent_file(tmp_path / "me.npz", LatentFile(w=w, noise=noise, model_hash=generator_hash(generator)))
    write_latent_file(tmp_path / "other.npz", LatentFile(w=w, model_hash="0" * 64))
    with open_window(qtbot, tmp_path) as window:
        before = window.stack.scene
        window.documents.load_latent(str(tmp_path / "me.npz"))
        expected = Renderer(tiny_generator()).render(Scene(w=w, noise_maps=noise))
        np.testing.assert_array_equal(window.last_result.image, expected.image)
        window.stack.undo()
        assert window.stack.scene == before
        window.documents.load_latent(str(tmp_path / "other.npz"))
        assert window._ask.errors[-1].endswith("made for another model (000000000000…), not this "
                                               f"one ({generator_hash(generator)[:12]}…)")
        assert window.stack.scene == before


def _picture(path):
    from PIL import Image

    Image.fromarray(np.random.default_rng(3).integers(0, 256, (90, 40, 3), np.uint8)).save(path)


def test_a_dropped_picture_is_projected_and_keep_makes_it_the_scene_as_one_undo_step(qtbot, tmp_path):
    _picture(tmp_path / "me.jpg")
    with open_window(qtbot, tmp_path) as window:
        window.documents.projection_settings = ProjectionSettings(steps=12, candidates=4)
        before = window.stack.scene
        window.documents.open_dropped([str(tmp_path / "me.jpg")])
        dialog = window.findChild(ProjectionDialog)
        assert dialog.result is None  # the user frames the crop first
        dialog.project()
        assert dialog.progress.value() == 12 == dialog.result.steps
        assert dialog.render_view.pixmap() is not None and "PSNR" in dialog.figures.text()
        # the reconstruction fits the square the picture fits (64 x 32 model, 384 px square)
        shown = dialog.render_view.pixmap().size()
        assert (shown.width(), shown.height()) == (VIEW_SIDE // 2, VIEW_SIDE)
        dialog.keep()
        scene = window.stack.scene
        assert scene.w is not None and np.array_equal(scene.w, dialog.result.w[0].numpy())
        (layer, value), = scene.detail_maps.items()  # fitted by default
        assert np.array_equal(value, dialog.result.detail[layer].numpy())
        expected = Renderer(tiny_generator()).render(Scene(w=scene.w, detail_maps=scene.detail_maps))
        np.testing.assert_array_equal(window.last_result.image, expected.image)
        window.stack.undo()
        assert window.stack.scene == before


def test_fine_detail_is_fitted_when_ticked_kept_with_the_latent_and_its_choice_remembered(qtbot, tmp_path):
    _picture(tmp_path / "me.jpg")
    with open_window(qtbot, tmp_path) as window:
        window.documents.projection_settings = ProjectionSettings(steps=8, candidates=4)
        dialog = window.documents.project_picture(str(tmp_path / "me.jpg"))
        assert dialog.detail_box.isChecked()  # on by default
        dialog.project()
        dialog.keep()
        scene = window.stack.scene
        (layer, value), = scene.detail_maps.items()
        assert np.array_equal(value, dialog.result.detail[layer].numpy()) and np.abs(value).max() > 0
        expected = Renderer(tiny_generator()).render(Scene(w=scene.w, detail_maps=scene.detail_maps))
        np.testing.assert_array_equal(window.last_result.image, expected.image)
        again = window.documents.project_picture(str(tmp_path / "me.jpg"))
        again.detail_box.setChecked(False)
        again.project()
        again.keep()
        assert window.stack.scene.detail_maps is None and again.result.detail is None
        assert not window.documents.project_picture(str(tmp_path / "me.jpg")).detail_box.isChecked()
        window.latent_panel.use_seed.click()  # back to the seed: the map goes with the latent
        assert window.stack.scene.w is None and window.stack.scene.detail_maps is None


def test_cancel_keeps_nothing_and_a_broken_picture_is_one_line_naming_it(qtbot, tmp_path):
    _picture(tmp_path / "me.png")
    (tmp_path / "broken.jpg").write_bytes(b"not a picture")
    with open_window(qtbot, tmp_path) as window:
        window.documents.projection_settings = ProjectionSettings(steps=3, candidates=4)
        before = window.stack.scene
        dialog = window.documents.project_picture(str(tmp_path / "me.png"))
        dialog.reject()
        assert window.stack.scene == before
        window.documents.project_picture(str(tmp_path / "broken.jpg"))
        assert window._ask.errors[-1].startswith(f"{tmp_path / 'broken.jpg'}: not a readable image")
        assert window.stack.scene == before


def test_another_latent_or_model_drops_a_projections_noise_and_detail_maps():
    from ganinterface.ui.documents import scene_for_model

    noise = {"b8.conv0": np.zeros((8, 4), np.float32)}
    projected = Scene(checkpoint="a.pkl", w=np.zeros(8, np.float32), noise_maps=noise,
                      detail_maps={"b8.conv0": np.zeros((3, 8, 4), np.float32)})
    model = type("Model", (), {"checkpoint": "b.pkl", "shape": type("Shape", (), {"c_dim": 0})})()
    assert scene_for_model(projected, model).noise_maps is None
    assert scene_for_model(projected, model).detail_maps is None


def test_sample_like_draws_a_new_portrait_from_the_files_gaussian_each_time(qtbot, tmp_path):
    generator = tiny_generator()
    rng = np.random.default_rng(5)
    paths = []
    for name in "ab":
        write_latent_file(tmp_path / f"{name}.npz", LatentFile(
            w=rng.standard_normal(generator.w_dim).astype(np.float32), model_hash=generator_hash(generator)))
        paths.append(str(tmp_path / f"{name}.npz"))
    with open_window(qtbot, tmp_path) as window:
        window.documents.sample_like(paths)
        first = window.stack.scene.w
        window.documents.sample_like(paths)
        second = window.stack.scene.w
        assert first.shape == (generator.w_dim,) and not np.array_equal(first, second)
        # two latents span a line: every draw lies on the line through them
        a, b = (np.load(path)["w"] for path in paths)
        direction = (b - a) / np.linalg.norm(b - a)
        offset = first - a
        assert np.allclose(offset, direction * (offset @ direction), atol=1e-4)
        window.stack.undo()
        assert np.array_equal(window.stack.scene.w, first)


@pytest.mark.slow  # loads the shipped encoder and searches twice
def test_a_picture_is_projected_from_the_encoder_beside_the_model_with_fewer_steps(qtbot, tmp_path):
    from ganinterface.engine.encoder import encoder_path, new_encoder, save_encoder
    from ganinterface.engine.projection import STEPS_FROM_A_GUESS
    from ganinterface.models.native import save_native

    generator = tiny_generator()
    checkpoint = tmp_path / "tiny.safetensors"
    save_native(generator, checkpoint)
    save_encoder(new_encoder(generator), encoder_path(checkpoint), generator_hash(generator), {})
    _picture(tmp_path / "me.png")
    with open_window(qtbot, tmp_path) as window:
        window.load_model_async(str(checkpoint))
        window.documents.projection_settings = ProjectionSettings(candidates=4)  # default steps
        dialog = window.documents.project_picture(str(tmp_path / "me.png"))
        dialog.project()
        assert dialog.progress.maximum() == STEPS_FROM_A_GUESS == dialog.result.steps
        dialog.reject()
        encoder_path(checkpoint).write_bytes(b"damaged")
        window.documents.projection_settings = ProjectionSettings(steps=3, candidates=4)
        dialog = window.documents.project_picture(str(tmp_path / "me.png"))
        dialog.project()
        assert dialog.progress.maximum() == 3 == dialog.result.steps
        assert f"without the encoder: {encoder_path(checkpoint)}: " in dialog.figures.text()
        dialog.reject()


def test_keyframes_of_the_current_latent_are_named_by_the_picture_or_file_it_came_from(
        qtbot, tmp_path):
    from ganinterface.engine.kinds import FeatureEdit
    from ganinterface.engine.scene import Mask, Rect

    _picture(tmp_path / "me.jpg")
    generator = tiny_generator()
    w = np.zeros((generator.num_ws, generator.w_dim), np.float32)
    write_latent_file(tmp_path / "saved.npz", LatentFile(w=w, model_hash=generator_hash(generator),
                                                         source="holiday.jpg"))
    with open_window(qtbot, tmp_path) as window:
        window.documents.projection_settings = ProjectionSettings(steps=2, candidates=2)
        panel = window.animation_panel
        window.documents.project_picture(str(tmp_path / "me.jpg"))
        dialog = window.findChild(ProjectionDialog)
        dialog.project()
        dialog.keep()
        edit = FeatureEdit("b8.conv1", (0,), Mask((Rect(0.1, 0.1, 0.5, 0.5),)), 1.0)
        window.stack.push(add_edit(edit))  # an edit keeps the latent and its name
        panel._add_latent()
        window.documents.load_latent(str(tmp_path / "saved.npz"))
        panel._add_latent()
        for _ in range(3):  # the file, the edit, the projection: back to a seed
            window.stack.undo()
        panel._add_latent()
        labels = [panel.list.item(i).text() for i in range(panel.list.count())]
        assert labels == ["1. me.jpg (W+, fine detail)", "2. holiday.jpg (W+)",
                          f"3. seed {window.stack.scene.seed} (W+)"]


def test_style_mix_and_fill_from_a_latent_file_borrow_from_a_projected_picture(qtbot, tmp_path):
    from ganinterface.engine.kinds import RegionResample
    from ganinterface.engine.scene import Mask, Rect

    generator = tiny_generator()
    renderer = Renderer(generator)
    borrowed = renderer.base_ws(Scene(seed=5))  # what a picture of seed 5 projects to
    write_latent_file(tmp_path / "you.npz", LatentFile(w=borrowed, model_hash=generator_hash(generator)))
    write_latent_file(tmp_path / "other.npz", LatentFile(w=borrowed, model_hash="0" * 64))
    with open_window(qtbot, tmp_path) as window:
        scene = window.stack.scene
        window.documents.style_mix_from_latent(str(tmp_path / "other.npz"), 2)
        assert window._ask.errors[-1].startswith(f"{tmp_path / 'other.npz'}: made for another model")
        assert window.stack.scene == scene

        window.documents.style_mix_from_latent(str(tmp_path / "you.npz"), 2)
        mixed = renderer.base_ws(scene)
        mixed[2:] = borrowed[2:]
        np.testing.assert_array_equal(window.last_result.image, renderer.render(Scene(w=mixed)).image)
        assert window.stack.scene.edits[0].name == "style of you.npz"
        window.stack.undo()

        box = Mask((Rect(0.2, 0.2, 0.8, 0.6),))
        window.stack.push(add_edit(RegionResample("b8.conv1", box, seed=11)))
        window.documents.fill_from_latent(0, str(tmp_path / "you.npz"))
        same_as_seed_5 = renderer.render(scene.replace(edits=(RegionResample("b8.conv1", box, seed=5),)))
        np.testing.assert_array_equal(window.last_result.image, same_as_seed_5.image)
        assert window.stack.scene.edits[0].source == "you.npz"
        window.edits_panel.list.setCurrentRow(0)
        window.edits_panel.new_fill.click()  # a random seed again, the latent dropped
        fill = window.stack.scene.edits[0]
        assert fill.w is None and fill.source == "" and fill.seed != 11


def test_projection_previews_are_spaced_and_end_on_the_last_step(monkeypatch):
    import torch

    from ganinterface.ui import projection_dialog

    clock = iter([0.0, 0.01, 0.02, 0.1, 0.11, 0.12])
    monkeypatch.setattr(projection_dialog.time, "monotonic", lambda: next(clock))
    shown = []
    previews = projection_dialog._Previews(lambda step, steps, image: shown.append((step, image.shape)))
    image = torch.zeros(1, 3, 4, 2)
    for step in range(1, 7):
        previews(step, 10, image)
    assert [step for step, _ in shown] == [1, 4]  # 1/15 s apart at most
    previews.flush()  # the search stopped after step 6 (a Keep mid-search)
    assert [step for step, _ in shown] == [1, 4, 6] and shown[-1][1] == (4, 2, 3)
    previews.flush()
    assert len(shown) == 3


def test_a_morph_in_the_window_carries_each_keyframes_noise_maps(qtbot, tmp_path):
    generator = tiny_generator()
    stored = {name: v.numpy() for name, v in generator.stored_noise().items()}
    name = sorted(stored)[0]
    w = np.zeros((generator.num_ws, generator.w_dim), np.float32)
    mine = np.full(stored[name].shape, 2.0, np.float32)
    write_latent_file(tmp_path / "noisy.npz", LatentFile(w=w, noise={name: mine},
                                                         model_hash=generator_hash(generator)))
    write_latent_file(tmp_path / "plain.npz", LatentFile(w=w + 1, model_hash=generator_hash(generator)))
    with open_window(qtbot, tmp_path) as window:
        panel = window.animation_panel
        window.documents.load_latent(str(tmp_path / "noisy.npz"))
        panel._add_latent()
        assert panel.add_latent_file(str(tmp_path / "plain.npz"))
        panel.frames_count.setValue(3)
        assert [panel.list.item(i).text() for i in range(2)] == ["1. noisy.npz (W+, noise)", "2. plain.npz (W+)"]
        # the current scene holds the noisy latent's maps; the last frame is the plain file's own
        first, middle, last = panel.frames()
        assert np.array_equal(first.noise_maps[name], mine) and np.array_equal(last.noise_maps[name], stored[name])
        assert np.allclose(middle.noise_maps[name], (mine + stored[name]) / 2)
        renderer = Renderer(generator)
        assert np.array_equal(renderer.render(last).image, renderer.render(Scene(w=w + 1)).image)


def test_a_picture_added_as_a_keyframe_is_projected_and_leaves_the_scene_alone(qtbot, tmp_path,
                                                                               monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    _picture(tmp_path / "you.jpg")
    with open_window(qtbot, tmp_path) as window:
        window.documents.projection_settings = ProjectionSettings(steps=4, candidates=2)
        panel, scene = window.animation_panel, window.stack.scene
        monkeypatch.setattr(QFileDialog, "getOpenFileName",
                            lambda *args, **kwargs: (str(tmp_path / "you.jpg"), ""))
        panel._add_file_dialog()  # a picture: projected first
        dialog = window.findChild(ProjectionDialog)
        assert dialog.keep_button.text() == "Add keyframe"
        dialog.project()
        dialog.keep()
        assert window.stack.scene is scene and not window.stack.can_undo()
        (keyframe,) = panel.keyframes
        assert np.array_equal(keyframe.w, dialog.result.w[0].numpy())
        (layer, value), = keyframe.detail.items()
        assert np.array_equal(value, dialog.result.detail[layer].numpy())
        assert panel.list.item(0).text() == "1. you.jpg (W+, fine detail)"
