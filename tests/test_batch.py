"""Batch jobs (export.batch): the same bytes whichever executor and chunking, resuming, failures."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganinterface.cli import main
from ganinterface.engine.kinds import FeatureEdit
from ganinterface.engine.renderer import Renderer
from ganinterface.engine.scene import Mask, Rect, Scene
from ganinterface.export import batch
from ganinterface.export.images import png_bytes
from ganinterface.models.loading import load_generator
from ganinterface.models.native import save_native
from tiny_models import tiny_stylegan1, tiny_stylegan2, tiny_stylegan3

EDIT = FeatureEdit("b8.conv1", (0, 1, 2), Mask((Rect(0.0, 0.5, 1.0, 1.0),)), 4.0)
EDIT_BUILTIN = FeatureEdit("b32.conv1", (3, 7), Mask((Rect(0.2, 0.4, 0.8, 0.9, softness=0.3),)), 2.0)


def _single_thread_png(renderer: Renderer, scene: Scene) -> bytes:
    """One scene rendered alone, as the window renders it, on one thread as every job renderer."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return png_bytes(renderer.render(scene).image, scene)
    finally:
        torch.set_num_threads(threads)


def _run(generator, scenes, folder: Path, batch_size: int = 1, workers: int = 1, **options):
    work = batch.Work(batch.PngImage(), batch_size)
    paths = [folder / f"{index:03d}.png" for index in range(len(scenes))]
    report = batch.run_job(batch.local_executor(generator, "cpu", work, workers, len(scenes)), scenes, paths,
                           work, **options)
    return report, paths


# ---- the same bytes ------------------------------------------------------------------------------

def test_a_batch_size_of_one_writes_the_windows_bytes(tmp_path):
    generator = tiny_stylegan2()
    scenes = [Scene(seed=seed, edits=(EDIT,)) for seed in range(5)]
    report, paths = _run(generator, scenes, tmp_path)
    assert report.written == paths and not report.failures
    reference = Renderer(tiny_stylegan2(), "cpu")
    assert [path.read_bytes() for path in paths] == [_single_thread_png(reference, s) for s in scenes]


def test_render_threads_in_this_process_write_the_bytes_of_one(tmp_path):
    generator = tiny_stylegan2()
    scenes = [Scene(seed=seed, edits=(EDIT,)) for seed in range(12)]
    work = batch.Work(batch.PngImage(), 1)
    paths = [tmp_path / f"{index:03d}.png" for index in range(len(scenes))]
    report = batch.run_job(batch.InProcess(generator, "cpu", work, threads=2), scenes, paths, work)
    assert report.written == paths
    reference = Renderer(tiny_stylegan2(), "cpu")
    assert [path.read_bytes() for path in paths] == [_single_thread_png(reference, s) for s in scenes]


def test_chunks_are_whole_batches_in_order_shrinking_towards_the_end():
    chunks = batch.chunks_of(range(200), list(range(200)), batch_size=4, workers=2)
    sizes = [len(chunk) for chunk in chunks]
    assert [index for chunk in chunks for index, _ in chunk] == list(range(200))
    assert all(size % 4 == 0 for size in sizes) and sizes == sorted(sizes, reverse=True)
    assert sizes[0] == batch.CHUNK_IMAGES and sizes[-3:] == [4, 4, 4]


MODEL_KINDS = {"stylegan2": tiny_stylegan2, "stylegan2 resnet": lambda: tiny_stylegan2(architecture="resnet"),
               "stylegan3": tiny_stylegan3, "stylegan1": tiny_stylegan1}


def _rendered(generator, scenes, folder: Path, batch_size: int, encoder) -> list[bytes]:
    """The files ``encoder`` makes of each scene, rendered in batches of ``batch_size`` in this process."""
    work = batch.Work(encoder, batch_size)
    paths = [folder / f"{index:03d}" for index in range(len(scenes))]
    report = batch.run_job(batch.InProcess(generator, "cpu", work), scenes, paths, work)
    assert not report.failures
    return [path.read_bytes() for path in paths]


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_batched_images_and_raw_outputs_are_the_bytes_of_single_renders_for_every_model_kind(
        tmp_path, kind):
    generator = MODEL_KINDS[kind]()
    scenes = [Scene(seed=seed, truncation_psi=0.8) for seed in range(7)]  # batches of 4 and 3
    for encoder in (batch.PngImage(), batch.RawArray()):
        folder = tmp_path / type(encoder).__name__
        single = _rendered(generator, scenes, folder / "single", 1, encoder)
        assert _rendered(generator, scenes, folder / "batched", 4, encoder) == single


@pytest.mark.parametrize("model", [
    "tiny",
    # big enough for torch to take another convolution kernel for one image than for a batch
    pytest.param("built-in", marks=pytest.mark.slow)])
def test_batched_images_with_edits_are_the_bytes_of_single_renders(tmp_path, model):
    make, edit = (tiny_stylegan2, EDIT) if model == "tiny" else (lambda: load_generator(None),
                                                                 EDIT_BUILTIN)
    scenes = [Scene(seed=seed, edits=(edit,) if seed % 2 else ()) for seed in range(7)]
    single = Renderer(make(), "cpu")
    for encoder in (batch.PngImage(), batch.RawArray()):
        folder = tmp_path / type(encoder).__name__
        with batch.one_thread():
            expected = [encoder.encode(single.render(scene), scene) for scene in scenes]
        assert _rendered(make(), scenes, folder, 4, encoder) == expected


def test_render_batches_by_default_on_the_cpu_and_writes_the_windows_bytes(tmp_path, monkeypatch):
    checkpoint = tmp_path / "tiny.safetensors"
    save_native(tiny_stylegan2(), checkpoint)
    batches = []
    render_batch = Renderer.render_batch
    monkeypatch.setattr(Renderer, "render_batch",
                        lambda self, scenes, taps=(): batches.append(len(scenes)) or render_batch(self, scenes, taps))
    assert main(["render", "-q", "--checkpoint", str(checkpoint), "--seeds", "0-9", "--workers", "1",
                 "-o", str(tmp_path / "out" / "{seed}.png")]) == 0
    assert batches and set(batches) == {batch.auto_batch_size(8, 16)}
    single = Renderer(load_generator(checkpoint), "cpu")
    assert [(tmp_path / "out" / f"{seed}.png").read_bytes() for seed in range(10)] == [
        _single_thread_png(single, Scene(checkpoint=str(checkpoint), seed=seed)) for seed in range(10)]


def test_a_scene_its_batch_cannot_take_fails_alone(tmp_path):
    generator = tiny_stylegan2()
    bad = Scene(seed=2, w=np.zeros(3, np.float32))  # no W of this model
    scenes = [Scene(seed=0), Scene(seed=1, noise_mode="none"), bad, Scene(seed=3)]
    report, paths = _run(generator, scenes, tmp_path, batch_size=4)
    assert [failure.indices for failure in report.failures] == [(2,)]
    assert "scene.w has shape (3,)" in report.failures[0].error
    single = Renderer(tiny_stylegan2(), "cpu")
    assert [paths[i].read_bytes() for i in (0, 1, 3)] == [_single_thread_png(single, scenes[i])
                                                          for i in (0, 1, 3)]


@pytest.mark.slow
def test_in_process_two_worker_processes_and_ray_write_the_same_bytes(tmp_path):
    ray = pytest.importorskip("ray")
    from ganinterface.export.ray_executor import RayCluster

    generator = load_generator(None)
    scenes = [Scene(seed=seed, truncation_psi=0.7, edits=(EDIT_BUILTIN,)) for seed in range(40)]
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning", log_to_driver=False)
    try:
        for batch_size in (1, 4):
            folder = tmp_path / str(batch_size)
            _, here = _run(generator, scenes, folder / "here", batch_size)
            _, workers = _run(generator, scenes, folder / "workers", batch_size, workers=2)
            work = batch.Work(batch.PngImage(), batch_size)
            on_ray = [folder / "ray" / path.name for path in here]
            report = batch.run_job(RayCluster("local", generator, work), scenes, on_ray, work)
            assert not report.failures
            expected = [path.read_bytes() for path in here]
            assert [path.read_bytes() for path in workers] == expected, batch_size
            assert [path.read_bytes() for path in on_ray] == expected, batch_size
    finally:
        ray.shutdown()


# ---- failures, resuming ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _Flaky:
    """A PNG encoder failing on ``seed`` the first ``times`` times it is asked (counted in ``calls``)."""

    seed: int
    times: int
    taps: tuple[str, ...] = ()
    calls = {}  # seed -> times asked

    def encode(self, result, scene):
        if scene.seed == self.seed:
            self.calls[self.seed] = self.calls.get(self.seed, 0) + 1
            if self.calls[self.seed] <= self.times:
                raise OSError(f"disk hiccup on seed {scene.seed}")
        return batch.PngImage().encode(result, scene)


def _run_encoder(encoder, scenes, folder: Path):
    work = batch.Work(encoder, 1)
    paths = [folder / f"{scene.seed}.png" for scene in scenes]
    return batch.run_job(batch.InProcess(tiny_stylegan2(), "cpu", work), scenes, paths, work), paths


def test_a_failed_chunk_is_run_again(tmp_path, monkeypatch):
    monkeypatch.setattr(batch, "CHUNK_IMAGES", 4)
    scenes = [Scene(seed=seed) for seed in range(10)]
    report, paths = _run_encoder(_Flaky(seed=5, times=1), scenes, tmp_path)
    assert _Flaky.calls[5] == 2 and not report.failures
    assert all(path.exists() for path in paths)


@dataclasses.dataclass(frozen=True)
class _DyingOnce:
    """A task whose worker process dies on its first chunk (the marker file says it did)."""

    marker: Path
    batch_size: int = 1

    def run_chunk(self, renderer, chunk, cancel=None):
        if not self.marker.exists():
            self.marker.write_text("died")
            os._exit(1)
        return batch.Work(batch.PngImage()).run_chunk(renderer, chunk, cancel)


@pytest.mark.slow
def test_a_chunk_whose_worker_died_is_run_again_on_new_workers(tmp_path):
    scenes = [Scene(seed=seed) for seed in range(40)]
    task = _DyingOnce(tmp_path / "marker")
    paths = [tmp_path / "out" / f"{scene.seed}.png" for scene in scenes]
    report = batch.run_job(batch.LocalProcesses(tiny_stylegan2(), "cpu", task, 2), scenes, paths,
                           task)
    assert (tmp_path / "marker").exists() and not report.failures
    assert sorted(report.written) == sorted(paths)


@dataclasses.dataclass(frozen=True)
class _LargeOutcomes:
    """A task whose outcomes are far larger than a pipe holds: ended workers are caught writing."""

    batch_size: int = 1

    def run_chunk(self, renderer, chunk, cancel=None):
        return [b"x" * (8 << 20) for _ in chunk]


@pytest.mark.slow
def test_workers_ended_while_they_write_results_let_the_pool_close():
    import threading
    for pause in (0.0, 0.03):
        workers = batch.LocalProcesses(tiny_stylegan2(), "cpu", _LargeOutcomes(), 2)
        calls = [workers.submit([Scene(seed=seed)]) for seed in range(40)]
        calls[0].result()
        time.sleep(pause)
        closing = threading.Thread(target=workers.close, args=(True,), daemon=True)
        closing.start()
        closing.join(30)  # measured without the pipe's closing: hung on the first try
        assert not closing.is_alive(), "closing the pool hung"


def test_a_chunk_failing_again_is_reported_by_seed_and_the_others_are_written(tmp_path, monkeypatch):
    monkeypatch.setattr(batch, "CHUNK_IMAGES", 4)
    scenes = [Scene(seed=seed) for seed in range(10, 20)]
    report, paths = _run_encoder(_Flaky(seed=15, times=99), scenes, tmp_path)
    # chunks of 4, then shrinking to half of what is left: 0-3, 4-6, 7-8, 9
    assert [(f.indices, f.error) for f in report.failures] == [((4, 5, 6), "disk hiccup on seed 15")]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{seed}.png" for seed in (10, 11, 12, 13, 17, 18, 19))


def test_a_seed_that_cannot_render_is_named_and_the_rest_are_written(tmp_path, capsys):
    checkpoint = tmp_path / "tiny.safetensors"
    save_native(tiny_stylegan2(), checkpoint)
    bad = Scene(checkpoint=str(checkpoint), seed=3, edits=(FeatureEdit("b64.conv1", (0,), Mask(()), 1.0),))
    (tmp_path / "bad.json").write_text(bad.to_json())
    (tmp_path / "good.json").write_text(bad.replace(edits=()).to_json())
    code = main(["render", "-q", "--scene", str(tmp_path / "good.json"), "--scene",
                 str(tmp_path / "bad.json"), "-o", str(tmp_path / "out" / "{name}.png")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1
    assert err.startswith("ganinterface render: error: 1 of 2 images failed (1 written): bad: ")
    assert os.listdir(tmp_path / "out") == ["good.png"]


def test_skip_existing_leaves_finished_files_alone(tmp_path):
    generator = tiny_stylegan2()
    scenes = [Scene(seed=seed) for seed in range(6)]
    _, paths = _run(generator, scenes[:3], tmp_path)
    before = {path: path.stat().st_mtime_ns for path in paths}
    report, all_paths = _run(generator, scenes, tmp_path, skip_existing=True)
    assert report.skipped == paths and report.written == all_paths[3:]
    assert {path: path.stat().st_mtime_ns for path in paths} == before


def test_an_output_that_cannot_be_written_is_refused_before_any_worker_starts(tmp_path, capsys,
                                                                              monkeypatch):
    (tmp_path / "blocker").write_text("a file where a folder should be")
    monkeypatch.setattr(batch, "LocalProcesses", None)  # starting workers would fail loudly
    assert main(["render", "--seeds", "0-299", "--workers", "2",
                 "-o", str(tmp_path / "blocker" / "{seed}.png")]) == 1
    assert "cannot write" in capsys.readouterr().err


def test_ray_without_ray_installed_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    assert main(["render", "--seeds", "0", "--ray", "-o", str(tmp_path / "a.png")]) == 1
    assert capsys.readouterr().err.strip() == ('ganinterface render: error: --ray: Ray is not '
                                               'installed: pip install "ganinterface[cluster]"')
    assert not (tmp_path / "a.png").exists()


# ---- a real process, interrupted and resumed -------------------------------------------------------

# five chunks for two workers: when the first lands, at least one is still to come when the signal does
RESUMED_SEEDS = 160


def _command(folder: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "ganinterface", "render", "--seeds", f"0-{RESUMED_SEEDS - 1}",
            "--batch-size", "4",
            "--workers", "2", "-q", "-o", str(folder / "{seed}.png"), *extra]


def _wait_for_files(folder: Path, count: int, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if folder.is_dir() and len(list(folder.glob("*.png"))) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} files appeared; exit code {process.poll()}")


@pytest.fixture(scope="module")
def complete_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("complete")
    subprocess.run(_command(folder), check=True)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL])
def test_a_run_stopped_half_way_resumes_to_the_same_files(tmp_path, complete_run, how):
    stopped = tmp_path / "stopped"
    # Ctrl-C reaches it even when the tests run as a background job, whose children inherit an
    # ignored SIGINT (and Python then installs no handler for it)
    process = subprocess.Popen(_command(stopped), stderr=subprocess.PIPE,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    _wait_for_files(stopped, 16, process)
    process.send_signal(how)
    _, err = process.communicate(timeout=60)  # returns once the workers, holding stderr, are gone
    if how == signal.SIGINT:
        assert process.returncode == 130 and err.decode().strip().endswith("render: interrupted")
    finished = sorted(stopped.glob("*.png"))
    assert 16 <= len(finished) < RESUMED_SEEDS
    for path in finished:  # every file there is whole
        assert path.read_bytes() == (complete_run / path.name).read_bytes()
    subprocess.run(_command(stopped, "--skip-existing"), check=True)
    names = sorted(path.name for path in complete_run.glob("*.png"))
    assert len(names) == RESUMED_SEEDS and sorted(path.name for path in stopped.glob("*.png")) == names
    assert all((stopped / name).read_bytes() == (complete_run / name).read_bytes() for name in names)


# ---- animate and project on the job model ----------------------------------------------------------

@pytest.mark.slow
def test_animate_project_and_pca_write_the_same_bytes_here_on_two_workers_and_on_ray(tmp_path):
    ray = pytest.importorskip("ray")
    checkpoint = tmp_path / "tiny.safetensors"
    save_native(tiny_stylegan2(), checkpoint)
    rng = np.random.default_rng(5)
    pictures = [tmp_path / f"in{index}.png" for index in range(3)]
    for path in pictures:
        Image.fromarray(rng.integers(0, 256, (40, 30, 3), np.uint8)).save(path)
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning", log_to_driver=False)
    try:
        for name, where in [("here", ["--workers", "1"]), ("workers", ["--workers", "2"]),
                            ("ray", ["--ray"])]:
            out = tmp_path / name
            assert main(["animate", "--checkpoint", str(checkpoint), "--seeds", "1,2,3", "--frames",
                         "12", "-q", "-o", str(out / "a.gif"), *where]) == 0
            assert main(["project", *map(str, pictures), "--checkpoint", str(checkpoint),
                         "--steps", "3", "-q", "-o", str(out / "{name}.npz"), *where]) == 0
            assert main(["directions", str(checkpoint), "--method", "pca", "--count", "2",
                         "--samples", "1100", "-q", "-o", str(out), *where]) == 0
    finally:
        ray.shutdown()
    names = sorted(path.name for path in (tmp_path / "here").iterdir())
    assert names == ["a.gif", "in0.npz", "in0.png", "in1.npz", "in1.png", "in2.npz", "in2.png",
                     "pca-00.json", "pca-00.npy", "pca-01.json", "pca-01.npy"]
    for name in names:
        expected = (tmp_path / "here" / name).read_bytes()
        assert (tmp_path / "workers" / name).read_bytes() == expected, name
        assert (tmp_path / "ray" / name).read_bytes() == expected, name


def test_samples_for_the_search_drawn_as_a_batch_job_are_those_drawn_here():
    from ganinterface.search.samples import draw_samples

    class Blind:
        def classify(self, images):
            return {"count": np.full((len(images), 1), len(images))}

    generator = tiny_stylegan2()
    seeds, layers = range(30, 41), ["b8.conv1"]  # batches of 4: 4, 4, 3

    def on_threads(task, items):
        return batch.InProcess(generator, "cpu", task, threads=2)

    with batch.one_thread():
        here = draw_samples(generator, Blind(), seeds, layers, batch=4)
    drawn = draw_samples(generator, Blind(), seeds, layers, batch=4, executor_for=on_threads)
    assert drawn.seeds == here.seeds and np.array_equal(drawn.ws, here.ws)
    assert np.array_equal(drawn.images, here.images)
    assert np.array_equal(drawn.features["b8.conv1"], here.features["b8.conv1"])
    assert np.array_equal(drawn.probabilities["count"], here.probabilities["count"])


@pytest.mark.slow  # starts two worker processes
def test_projections_for_the_report_found_as_a_job_are_those_found_here():
    from ganinterface.engine.projection import ProjectionSettings
    from ganinterface.engine.picture_distance import PerceptualDistance
    from ganinterface.search.projection_report import project_pictures

    generator = tiny_stylegan2()
    renderer = Renderer(generator, "cpu")
    pictures = np.random.default_rng(3).integers(0, 256, (3, 24, 12, 3), np.uint8)
    settings, distance = ProjectionSettings(space="w+", steps=3), PerceptualDistance()
    here = project_pictures(renderer, pictures, settings, None, distance)
    jobs = []

    def on_workers(task, items):
        jobs.append(items)
        return batch.LocalProcesses(generator, "cpu", task, 2)

    there = project_pictures(renderer, pictures, settings, None, distance, executor_for=on_workers)
    assert jobs == [3] and there.pictures_at_once == 2 and here.pictures_at_once == 1
    for mine, theirs in zip(here.scenes, there.scenes):
        assert np.array_equal(mine.w, theirs.w)
    assert np.array_equal(here.images, there.images)
    assert all(0 < cpu <= wall * 1.5 for cpu, wall in zip(there.cpu_seconds, there.seconds))


@dataclasses.dataclass(frozen=True)
class TwoFilesEach:
    """Two files per item, as ``project`` writes; the item named "bad" fails."""

    batch_size: int = 1

    def run_chunk(self, renderer, chunk, cancel=None):
        return [batch.Outcome(index, error="no face found") if name == "bad"
                else batch.Outcome(index, (name.encode(), name.encode() * 2)) for index, name in chunk]


def test_a_failed_item_of_a_two_file_job_is_counted_once_and_its_neighbours_are_written(tmp_path):
    import argparse

    from ganinterface.cli import UserError, options

    names = ["a", "bad", "c"]
    paths = [(tmp_path / f"{name}.npz", tmp_path / f"{name}.png") for name in names]
    args = argparse.Namespace(ray=None, workers=1, quiet=True, skip_existing=False)
    with pytest.raises(UserError) as failed:
        options.run_task(args, tiny_stylegan2(), "cpu", names, paths, TwoFilesEach(), "project",
                         lambda indices: ", ".join(names[i] for i in indices), "pictures")
    assert str(failed.value) == "1 of 3 pictures failed (2 written): bad: no face found"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.npz", "a.png", "c.npz", "c.png"]


@pytest.mark.parametrize("platform, frozen, method", [
    ("linux", False, "forkserver"),  # workers fork from a server that imported torch once
    ("linux", True, "spawn"),  # a frozen app's fork server would be the app itself
    ("darwin", False, "spawn"),
    ("win32", False, "spawn"),
])
def test_how_workers_start_on_each_platform(monkeypatch, platform, frozen, method):
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setattr(sys, "frozen", frozen, raising=False)
    assert batch.worker_context().get_start_method() == method
