"""Batch jobs without a window: render or raise, a scene's edits on many seeds, animations."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
from PIL import Image

from ganinterface.engine.renderer import Renderer, RenderError
from ganinterface.engine.kinds import FeatureEdit
from ganinterface.engine.scene import Mask, Rect, Scene
from ganinterface.export import jobs
from ganinterface.export.images import read_png_scene
from ganinterface.export.progress import Cancelled, CancelToken
from ganinterface.export.userfiles import UserFileError
from tiny_models import tiny_stylegan2

EDIT = FeatureEdit("b8.conv1", (0, 1, 2), Mask((Rect(0.0, 0.5, 1.0, 1.0),)), 4.0)


@pytest.fixture(scope="module")
def renderer():
    return Renderer(tiny_stylegan2(), "cpu")


def _reference(scene: Scene) -> np.ndarray:
    """From a renderer of its own, so a cache shared with the job cannot hide a difference."""
    return Renderer(tiny_stylegan2(), "cpu").render(scene).image


def test_render_or_raise_names_the_seed_or_what_it_is_told(renderer):
    result = jobs.render_or_raise(renderer, Scene(seed=3), taps=["b8.conv1"])
    np.testing.assert_array_equal(result.image, _reference(Scene(seed=3)))
    assert result.features["b8.conv1"].shape[0] == 6
    broken = Scene(seed=4, edits=(FeatureEdit("b99.conv1", (0,), Mask((Rect(0, 0, 1, 1),)), 1.0),))
    with pytest.raises(RenderError, match=r"^seed 4: .*b99\.conv1"):
        jobs.render_or_raise(renderer, broken)
    with pytest.raises(RenderError, match=r"^frame 7: "):
        jobs.render_or_raise(renderer, broken, what="frame 7")


def test_render_seeds_puts_the_scenes_edits_on_each_seed(renderer):
    scene = Scene(seed=0, truncation_psi=0.6, w=np.zeros(8, np.float32), edits=(EDIT,))
    results = list(jobs.render_seeds(renderer, scene, [5, 2]))
    assert [r.seed for r in results] == [5, 2]
    for result in results:
        expected = Scene(seed=result.seed, truncation_psi=0.6, edits=(EDIT,))
        assert result.scene == expected
        np.testing.assert_array_equal(result.image, _reference(expected))


def test_apply_to_seeds_writes_pngs_that_reopen_as_their_scenes(renderer, tmp_path):
    seen = []
    written = jobs.apply_to_seeds(renderer, Scene(edits=(EDIT,)), [3, 4],
                                  lambda seed: tmp_path / "out" / f"s{seed}.png", scale=2,
                                  progress=lambda done, total: seen.append((done, total)))
    assert written == [tmp_path / "out" / "s3.png", tmp_path / "out" / "s4.png"]
    assert seen == [(1, 2), (2, 2)]
    for seed, path in zip((3, 4), written):
        expected = _reference(Scene(seed=seed, edits=(EDIT,)))
        np.testing.assert_array_equal(np.asarray(Image.open(path)),
                                      expected.repeat(2, axis=0).repeat(2, axis=1))
        assert read_png_scene(path) == Scene(seed=seed, edits=(EDIT,))


def test_apply_to_seeds_stops_at_cancel_keeping_finished_images(renderer, tmp_path):
    cancel = CancelToken()

    def progress(done: int, total: int) -> None:
        if done == 2:
            cancel.cancel()

    with pytest.raises(Cancelled):
        jobs.apply_to_seeds(renderer, Scene(), range(10), lambda s: tmp_path / f"{s}.png",
                            progress=progress, cancel=cancel)
    assert sorted(os.listdir(tmp_path)) == ["0.png", "1.png"]


def test_a_failed_seed_stops_the_job_with_its_seed_named(renderer, tmp_path, monkeypatch):
    real_render = Renderer.render

    def fail_on_seed_2(self, scene, taps=()):
        result = real_render(self, scene, taps)
        if scene.seed == 2:
            result.error, result.image = "the model produced NaNs", None
        return result

    monkeypatch.setattr(Renderer, "render", fail_on_seed_2)
    with pytest.raises(RenderError, match="^seed 2: the model produced NaNs$"):
        jobs.apply_to_seeds(renderer, Scene(), [1, 2, 3], lambda s: tmp_path / f"{s}.png")
    assert os.listdir(tmp_path) == ["1.png"]


def test_export_image_writes_the_scene_it_rendered(renderer, tmp_path):
    scene = Scene(seed=6, edits=(EDIT,))
    path = jobs.export_image(renderer, scene, tmp_path / "sub" / "x.png", scale=3)
    assert read_png_scene(path) == scene
    np.testing.assert_array_equal(np.asarray(Image.open(path)),
                                  _reference(scene).repeat(3, axis=0).repeat(3, axis=1))


def test_export_animation_strip_is_the_frames_side_by_side(renderer, tmp_path):
    scenes = [Scene(seed=s) for s in (1, 2, 3)]
    path = jobs.export_animation(renderer, scenes, tmp_path / "strip.png", fps=10)
    strip = np.asarray(Image.open(path).convert("RGB"))
    np.testing.assert_array_equal(strip, np.concatenate([_reference(s) for s in scenes], axis=1))


@pytest.mark.parametrize("fmt, name", [("gif", "a.gif"), ("mp4", "a.mp4"), ("strip", "a.png"),
                                       ("png-seq", "frames")])
def test_a_cancelled_animation_leaves_no_file(renderer, tmp_path, fmt, name):
    cancel = CancelToken()
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        if done == 2:
            cancel.cancel()

    with pytest.raises(Cancelled):
        jobs.export_animation(renderer, [Scene(seed=s) for s in range(6)], tmp_path / name, fmt,
                              fps=10, progress=progress, cancel=cancel)
    assert seen == [1, 2]
    assert os.listdir(tmp_path) == []


def test_a_failed_frame_is_named_and_leaves_no_file(renderer, tmp_path):
    bad = Scene(edits=(FeatureEdit("b99.conv1", (0,), Mask((Rect(0, 0, 1, 1),)), 1.0),))
    with pytest.raises(RenderError, match="^frame 1: "):
        jobs.export_animation(renderer, [Scene(), bad, Scene()], tmp_path / "a.gif", fps=10)
    assert os.listdir(tmp_path) == []


def test_an_unwritable_animation_names_its_file(renderer, tmp_path):
    (tmp_path / "afile").write_text("in the way")
    with pytest.raises(UserFileError, match="afile/a.gif: cannot write"):
        jobs.export_animation(renderer, [Scene()], tmp_path / "afile" / "a.gif", fps=10)


def _counting_renders(monkeypatch) -> list[int]:
    seeds: list[int] = []
    real_render = Renderer.render

    def render(self, scene, taps=()):
        seeds.append(scene.seed)
        return real_render(self, scene, taps)

    monkeypatch.setattr(Renderer, "render", render)
    return seeds


def _no_writing_in(folder, monkeypatch) -> None:
    """The system's answer for a read-only folder, which root would not get from chmod."""
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: path != folder
                        and real_access(path, mode, **kw))


@pytest.mark.parametrize("name, fmt", [("a.gif", "gif"), ("a.mp4", "mp4"), ("a.png", "strip"),
                                       ("frames", "png-seq")])
def test_an_animation_into_a_read_only_folder_renders_nothing(renderer, tmp_path, monkeypatch,
                                                              name, fmt):
    _no_writing_in(tmp_path, monkeypatch)
    rendered = _counting_renders(monkeypatch)
    with pytest.raises(UserFileError, match="no permission to write in"):
        jobs.export_animation(renderer, [Scene(seed=s) for s in range(4)], tmp_path / name, fmt,
                              fps=10)
    assert rendered == []


def test_every_job_refuses_an_output_through_a_file_before_rendering(renderer, tmp_path,
                                                                     monkeypatch):
    (tmp_path / "afile").write_text("in the way")
    rendered = _counting_renders(monkeypatch)
    blocked = re.escape(f"cannot write: {tmp_path / 'afile'} is a file, not a folder")
    with pytest.raises(UserFileError, match=blocked):
        jobs.apply_to_seeds(renderer, Scene(), [1, 2, 3],
                            lambda seed: tmp_path / ("afile" if seed == 3 else "ok") / f"{seed}.png")
    with pytest.raises(UserFileError, match=blocked):
        jobs.export_image(renderer, Scene(), tmp_path / "afile" / "x.png")
    assert rendered == [] and os.listdir(tmp_path) == ["afile"]
