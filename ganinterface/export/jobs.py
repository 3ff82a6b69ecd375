"""Jobs shared by the window and the command line: render or raise, apply to seeds, export.

Each job is a plain function of a renderer and Scenes (no Qt, no argparse), reports progress through
a ``(done, total)`` callback and stops at a ``CancelToken``.  The command line's jobs over many
scenes run through ``export.batch`` (chunks in this process, in worker processes or on Ray); the
window applies a scene to seeds here, on its own renderer.  Files are written atomically through
``export.userfiles``; errors are one line naming the seed, frame or file.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import io
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from ganinterface.engine.directions import W_SAMPLE_BATCH, sample_w
from ganinterface.engine.renderer import RenderError
from ganinterface.engine.scene import Scene
from ganinterface.export import userfiles
from ganinterface.export.progress import CancelToken, ProgressCallback, no_progress

if TYPE_CHECKING:
    import torch

    from ganinterface.engine.projection import ProjectionSettings
    from ganinterface.engine.picture_distance import PerceptualDistance
    from ganinterface.engine.renderer import Renderer, RenderResult
    from ganinterface.export.batch import Chunk, Executor, ExecutorFor, Outcome, Task

T = TypeVar("T")


def render_or_raise(renderer: "Renderer", scene: Scene, taps: Sequence[str] = (),
                    what: str | None = None) -> "RenderResult":
    """``renderer.render``, with a failed render raised as a RenderError naming ``what`` (by default
    the scene's seed): the one place a RenderResult's error becomes an exception."""
    result = renderer.render(scene, taps)
    if result.error is not None:
        raise RenderError(f"{what or f'seed {scene.seed}'}: {result.error}")
    return result


# ---- one scene's edits on many seeds ----------------------------------------------------------------

@dataclasses.dataclass(frozen=True, eq=False)
class SeedImage:
    seed: int
    scene: Scene  # what was rendered: the job's scene on this seed
    image: np.ndarray  # uint8 (H, W, 3)


def on_seed(scene: Scene, seed: int) -> Scene:
    """``scene`` with its latent replaced by ``seed`` (its edits, truncation and noise kept)."""
    return scene.replace(seed=seed, w=None)


def render_seeds(renderer: "Renderer", scene: Scene, seeds: Sequence[int], *,
                 cancel: CancelToken | None = None) -> Iterator[SeedImage]:
    """One chunk of an apply-to-seeds job: ``scene``'s edits rendered on each seed in turn.

    Apply a recipe first with ``recipe.applied_to(scene)``.  ``cancel`` is checked before each seed.
    """
    for seed in seeds:
        if cancel is not None:
            cancel.raise_if_cancelled()
        seeded = on_seed(scene, seed)
        yield SeedImage(seed, seeded, render_or_raise(renderer, seeded).image)


def apply_to_seeds(renderer: "Renderer", scene: Scene, seeds: Sequence[int],
                   path_for: Callable[[int], Path], *, scale: int = 1,
                   progress: ProgressCallback = no_progress,
                   cancel: CancelToken | None = None) -> list[Path]:
    """``render_seeds`` written to ``path_for(seed)`` as PNGs (enlarged ``scale`` times) that carry
    their scenes; returns the paths written.  A cancelled or failed job keeps the images finished
    before it, each complete; an output that cannot be written is refused before the first render."""
    for seed in seeds:
        userfiles.check_writable(path_for(seed))
    written = []
    for item in render_seeds(renderer, scene, seeds, cancel=cancel):
        path = Path(path_for(item.seed))
        userfiles.make_folder_for(path)
        userfiles.write_png(path, item.image, item.scene, scale=scale)
        written.append(path)
        progress(len(written), len(seeds))
    return written


# ---- still images and animations -------------------------------------------------------------------

def export_image(renderer: "Renderer", scene: Scene, path: str | os.PathLike[str], *,
                 scale: int = 1, cancel: CancelToken | None = None) -> Path:
    """``scene`` rendered and written as a PNG that carries it (it reopens as the same scene)."""
    userfiles.check_writable(path)
    image = render_or_raise(renderer, scene, what="image").image
    if cancel is not None:
        cancel.raise_if_cancelled()
    userfiles.make_folder_for(path)
    userfiles.write_png(path, image, scene, scale=scale)
    return Path(path)


def export_animation(renderer: "Renderer", scenes: Sequence[Scene], path: str | os.PathLike[str],
                     fmt: str | None = None, *, fps: float, size: tuple[int, int] | None = None,
                     resample: str = "lanczos", columns: int | None = None,
                     progress: ProgressCallback = no_progress,
                     cancel: CancelToken | None = None) -> Path:
    """Render ``scenes`` one frame at a time into a GIF, MP4, PNG sequence or strip (see
    ``export.animation.export_frames``), the next frames rendering on another thread while one is
    encoded; nothing is left behind if a frame fails or is cancelled, and an output that cannot be
    written is refused before the first frame is rendered."""
    def frame(index: int) -> np.ndarray:
        return render_or_raise(renderer, scenes[index], what=f"frame {index}").image

    return _write_animation(lambda: rendered_ahead(frame, len(scenes)), len(scenes), path, fmt,
                            fps=fps, size=size, resample=resample, columns=columns,
                            progress=progress, cancel=cancel)


def export_animation_on(executor: "Executor", scenes: Sequence[Scene],
                        path: str | os.PathLike[str], fmt: str | None = None, *, fps: float,
                        size: tuple[int, int] | None = None, resample: str = "lanczos",
                        columns: int | None = None, progress: ProgressCallback = no_progress,
                        cancel: CancelToken | None = None) -> Path:
    """``export_animation`` with the frames rendered as a batch job on ``executor`` (whose task
    is ``frame_task()``), encoded here in order as they come back; the executor is closed."""
    from ganinterface.export import batch

    ordered = batch.run_in_order(executor, scenes, frame_task(), cancel=cancel)
    started = False

    def frames() -> Iterator[np.ndarray]:
        nonlocal started
        started = True
        with contextlib.closing(ordered):  # a frame that fails stops the others now
            try:
                for outcome in ordered:
                    if outcome.error is not None:
                        raise RenderError(f"frame {outcome.index}: {outcome.error}")
                    yield np.load(io.BytesIO(outcome.files[0]), allow_pickle=False)
            except batch.JobError as error:
                raise RenderError(f"{batch.seeds_text(error.failure.indices, 'frame')}: "
                                  f"{error}") from None

    try:
        return _write_animation(frames, len(scenes), path, fmt, fps=fps, size=size,
                                resample=resample, columns=columns, progress=progress,
                                cancel=cancel)
    finally:
        if not started:  # refused before the first frame: no job ran to close the executor
            executor.close(cancel=True)


def frame_task() -> "Task":
    """An animation's frames as a batch job's task: each scene's image, one at a time (the
    window's pixels), as uint8 ``.npy`` bytes."""
    from ganinterface.export import batch

    return batch.Work(batch.FrameArray())


def _write_animation(frames: Callable[[], Iterator[np.ndarray]], count: int,
                     path: str | os.PathLike[str], fmt: str | None, **settings) -> Path:
    from ganinterface.export.animation import export_frames, format_for_path

    fmt = fmt or format_for_path(path)
    userfiles.check_writable(path, folder=fmt == "png-seq")
    userfiles.make_folder_for(path)
    with userfiles.writing(path), contextlib.closing(frames()) as source:
        return export_frames(source, path, fmt, count=count, **settings)


def rendered_ahead(make: Callable[[int], T], count: int, ahead: int = 2) -> Iterator[T]:
    """``make(0) .. make(count - 1)`` in order, computed on one other thread up to ``ahead`` items
    before they are asked for (so rendering overlaps encoding); closing it stops the thread after
    the item in progress."""
    with ThreadPoolExecutor(1, thread_name_prefix="render-ahead") as thread:
        queued = collections.deque(thread.submit(make, index) for index in range(min(ahead, count)))
        try:
            for following in range(ahead, count + ahead):
                item = queued.popleft().result()
                if following < count:
                    queued.append(thread.submit(make, following))
                yield item
        finally:
            for future in queued:
                future.cancel()


# ---- projections -----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, eq=False)
class Picture:
    """One picture of a projection job: its name, the target (1, 3, H, W) in [-1, 1] at the
    model's size, and the encoder's starting guess (or None)."""

    name: str
    target: "torch.Tensor"
    start_w: "torch.Tensor | None" = None


@dataclasses.dataclass(frozen=True)
class ProjectionWork:
    """``project``'s task: each item a ``Picture``; its files the latent file (``.npz``) and the
    reconstruction PNG carrying its scene, its note the search's figures.  Pickles with the
    distance, to travel to the workers once."""

    settings: "ProjectionSettings"
    distance: "PerceptualDistance"
    model_hash: str
    checkpoint: str | None  # recorded in the scenes (resolved), None for the built-in model
    batch_size: int = 1

    def run_chunk(self, renderer: "Renderer", chunk: "Chunk",
                  cancel: CancelToken | None = None) -> "list[Outcome]":
        from ganinterface.engine.projection import ProjectionError
        from ganinterface.export.batch import Outcome

        outcomes = []
        for index, picture in chunk:
            if cancel is not None:
                cancel.raise_if_cancelled()
            try:
                outcomes.append(self._project(renderer, index, picture))
            except (ProjectionError, RenderError) as error:
                outcomes.append(Outcome(index, error=str(error)))
        return outcomes

    def _project(self, renderer: "Renderer", index: int, picture: Picture) -> "Outcome":
        from ganinterface.engine.projection import project
        from ganinterface.export.batch import Outcome
        from ganinterface.export.images import png_bytes

        found = project(renderer.generator, picture.target, self.settings, start_w=picture.start_w,
                        distance=self.distance)
        fields = found.scene_fields()
        latent = userfiles.LatentFile(w=fields["w"], noise=fields["noise_maps"],
                                      model_hash=self.model_hash, source=picture.name,
                                      detail=fields["detail_maps"])
        scene = latent_scene(latent, self.checkpoint)
        image = render_or_raise(renderer, scene, what=picture.name).image
        return Outcome(index, (userfiles.latent_file_bytes(latent), png_bytes(image, scene)),
                       note=f"PSNR {found.psnr:.2f} dB, {found.steps} steps in {found.seconds:.1f} s")


def latent_scene(latent: "userfiles.LatentFile", checkpoint: str | None) -> Scene:
    """The Scene that renders ``latent`` (its noise and detail maps too) with the checkpoint recorded."""
    recorded = None if checkpoint is None else str(Path(checkpoint).resolve())
    return Scene(checkpoint=recorded, **latent.scene_fields())


# ---- latents for directions --------------------------------------------------------------------------

W_SAMPLES_PER_IMAGE = 1000  # mapping a latent costs about a thousandth of rendering an image


@dataclasses.dataclass(frozen=True)
class MappedLatents:
    """``sample_w`` as a batch job's task: each item a seed, its file its w as float32 ``.npy``;
    chunks hold whole batches from the first seed on, so the ws are those of ``sample_w`` over
    all the seeds."""

    batch_size: int = W_SAMPLE_BATCH

    def run_chunk(self, renderer: "Renderer", chunk: "Chunk",
                  cancel: CancelToken | None = None) -> "list[Outcome]":
        from ganinterface.export.batch import Outcome, npy_bytes

        ws = sample_w(renderer.generator, [seed for _, seed in chunk], batch=self.batch_size)
        return [Outcome(index, (npy_bytes(w),)) for (index, _), w in zip(chunk, ws)]


def sampled_ws(executor_for: "ExecutorFor", seeds: Sequence[int],
               progress: ProgressCallback = no_progress) -> np.ndarray:
    """``sample_w`` of ``seeds``, mapped as a batch job where ``executor_for`` says (workers are
    chosen as for a job of a thousandth as many images)."""
    from ganinterface.export.batch import gather

    task = MappedLatents()
    files = gather(executor_for(task, len(seeds) // W_SAMPLES_PER_IMAGE), seeds, task,
                   progress=progress)
    return np.stack([np.load(io.BytesIO(data), allow_pickle=False) for data in files])
