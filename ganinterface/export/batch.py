"""Batch jobs over many items: chunks run here, in local worker processes or on Ray, and the files
are written here.

A job is a pure function of (generator, items, ``Task``).  The task says what a worker does with a
chunk of items given its renderer (``Task.run_chunk``) and must pickle: it travels to the workers
once.  ``Work`` is the task of every render command: each item is a Scene, its file the bytes an
``Encoder`` makes of its render, ``batch_size`` scenes rendered per pass.  The items are cut into
chunks; an executor (``InProcess``, ``LocalProcesses``, or ``export.ray_executor.RayCluster``) runs
the task on each, wherever it runs, and hands back an ``Outcome`` per item (its files' bytes, or why
it has none); ``run_job`` writes each file atomically on the driver as its chunk finishes, so workers
need no shared disk and an interrupted job keeps every file it finished, and ``run_in_order`` hands
the outcomes back in the items' order (an animation's frames, encoded as they come).

A worker renders and encodes on one core: N workers on N cores, each chunk a whole number of
batches, chunks shrinking towards the job's end so that the workers finish together.

Same bytes from every executor: the CPU's convolutions (oneDNN) sum in an order that depends on the
thread count, so every renderer of a job runs on one thread.  On the CPU a batch's images are the
bytes of ``Renderer.render``'s, one scene at a time on one thread (``models.base``, *Batches*),
whatever the batch size; on a GPU they depend on the batch size, so every batch is padded to the
job's.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import io
import math
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import (FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor,
                                wait)
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ganinterface.atomic import atomic_write_bytes
from ganinterface.engine.scene import Scene
from ganinterface.export.progress import CancelToken, ProgressCallback, no_progress

if TYPE_CHECKING:
    import torch

    from multiprocessing.connection import Connection

    from ganinterface.engine.renderer import Renderer, RenderResult
    from ganinterface.models.base import GeneratorBase

CHUNK_IMAGES = 32  # scenes a chunk holds at most (at least one batch): what a failure costs to redo
# towards the end chunks shrink to about this share of what is left per worker, so that no worker
# is left alone with a whole chunk while the others wait
CHUNKS_PER_WORKER_LEFT = 2
MAX_AUTO_BATCH = 8  # the automatic batch size's ceiling; larger batches gain little on a CPU
# the automatic batch holds about this many output pixels; a larger one outgrows the CPU's caches (a
# 256 px StyleGAN2 rendered 4 at a time took 1.09x the time of one at a time)
AUTO_BATCH_PIXELS = 1 << 16
# A spawned worker starts in about 3 s (torch, the model): on two cores, two workers first beat this
# process at about 230 images, so the default starts one per this many images.  Forked from a
# fork server started as the command began (``start_worker_server``), two beat it from about 64
# images (the built-in model, `render`: 2.74-2.81 s against 2.85 s; 2.38-2.57 s against 2.50 s
# at 32).
IMAGES_PER_SPAWNED_WORKER = 150
IMAGES_PER_FORKED_WORKER = 32
RETRIES = 1  # a failed chunk is run this many more times before its scenes are reported
WORKER_END_SECONDS = 5  # a terminated worker's time to go before it is killed


# ---- what a job does to one scene ---------------------------------------------------------------

class Encoder(Protocol):
    """Turns a render into the bytes of one output file; must pickle (it travels to workers)."""

    taps: tuple[str, ...]

    def encode(self, result: "RenderResult", scene: Scene) -> bytes: ...


@dataclasses.dataclass(frozen=True)
class PngImage:
    """The image as a PNG carrying its scene, enlarged ``scale`` times (nearest neighbour)."""

    scale: int = 1
    taps: tuple[str, ...] = ()

    def encode(self, result: "RenderResult", scene: Scene) -> bytes:
        from ganinterface.export.images import png_bytes, upscale

        image = result.image if self.scale == 1 else upscale(result.image, self.scale)
        return png_bytes(image, scene)


@dataclasses.dataclass(frozen=True)
class RawArray:
    """The raw float32 generator output (3, H, W) as ``.npy``."""

    taps: tuple[str, ...] = ()

    def encode(self, result: "RenderResult", scene: Scene) -> bytes:
        return npy_bytes(result.raw)


@dataclasses.dataclass(frozen=True)
class FrameArray:
    """The image, uint8 (H, W, 3), as ``.npy``: an animation's frame on its way to the driver."""

    taps: tuple[str, ...] = ()

    def encode(self, result: "RenderResult", scene: Scene) -> bytes:
        return npy_bytes(result.image, np.uint8)


@dataclasses.dataclass(frozen=True)
class FeatureGrid:
    """One layer's channels coloured and tiled in a PNG (``engine.colormap.feature_grid_image``)."""

    layer: str
    scale: str = "shared"
    palette: str = "red-white-green"
    columns: int | None = None

    @property
    def taps(self) -> tuple[str, ...]:
        return (self.layer,)

    def encode(self, result: "RenderResult", scene: Scene) -> bytes:
        from ganinterface.engine.colormap import feature_grid_image
        from ganinterface.export.images import png_bytes

        grid = feature_grid_image(result.features[self.layer], self.scale, self.palette,
                                  columns=self.columns)
        return png_bytes(grid)


@dataclasses.dataclass(frozen=True)
class FeatureArray:
    """One layer's activations (C, h, w) as float32 ``.npy``."""

    layer: str

    @property
    def taps(self) -> tuple[str, ...]:
        return (self.layer,)

    def encode(self, result: "RenderResult", scene: Scene) -> bytes:
        return npy_bytes(result.features[self.layer])


def npy_bytes(array: np.ndarray, dtype: "np.typing.DTypeLike" = np.float32) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=dtype), allow_pickle=False)
    return buffer.getvalue()


Chunk = Sequence[tuple[int, Any]]  # (index in the job, item)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What a task made of one item: the bytes of its files (one per output path), or why it has
    none; ``note`` is a line the command may report once the files are written."""

    index: int
    files: tuple[bytes, ...] = ()
    error: str | None = None
    note: str = ""


class Task(Protocol):
    """What a worker does with a chunk of a job's items; must pickle (it travels to the workers)."""

    batch_size: int  # the job's chunks hold whole batches of this many items

    def run_chunk(self, renderer: "Renderer", chunk: Chunk,
                  cancel: CancelToken | None = None) -> list[Outcome]:
        """An outcome per item: its file's bytes, or why it has none (an item's own fault);
        anything else (a worker lost, a full disk) is raised, and the chunk is run again."""
        ...


@dataclasses.dataclass(frozen=True)
class Work:
    """The render commands' task: each item a Scene, rendered ``batch_size`` at a time, its file
    what ``encoder`` makes of the render."""

    encoder: Encoder
    batch_size: int = 1

    def run_chunk(self, renderer: "Renderer", chunk: Chunk,
                  cancel: CancelToken | None = None) -> list[Outcome]:
        """Batch by batch, rendered and encoded on this thread (a worker is one core); a scene
        that cannot be rendered has its error."""
        outcomes = []
        for start in range(0, len(chunk), self.batch_size):
            if cancel is not None:
                cancel.raise_if_cancelled()
            batch = chunk[start:start + self.batch_size]
            outcomes += self._encode(batch, self._render(renderer, [scene for _, scene in batch]))
        return outcomes

    def _render(self, renderer: "Renderer", scenes: list[Scene]) -> list["RenderResult"]:
        """One pass for the batch, or each scene alone: with noise of its own, and where the batch
        fails (a scene it cannot take, or mixed noise modes), so that only a bad scene has an
        error."""
        from ganinterface.engine.renderer import RenderError

        taps = self.encoder.taps
        if self.batch_size > 1 and not any(scene.noise_mode == "random" or scene.noise_maps
                                           for scene in scenes):
            padded = scenes + [scenes[-1]] * (self.batch_size - len(scenes))  # on a GPU the size sets the sums
            try:
                return renderer.render_batch(padded, taps)[:len(scenes)]
            except (RenderError, ValueError):
                pass
        return [renderer.render(scene, taps) for scene in scenes]

    def _encode(self, batch: Chunk, results: list["RenderResult"]) -> list[Outcome]:
        return [Outcome(index, error=result.error) if result.error is not None
                else Outcome(index, (self.encoder.encode(result, scene),))
                for (index, scene), result in zip(batch, results)]


def auto_batch_size(width: int, height: int) -> int:
    """A batch of about ``AUTO_BATCH_PIXELS`` output pixels, a power of two from 1 to
    ``MAX_AUTO_BATCH``: a function of the image size alone, so that on a GPU (where the batch size
    sets the rounding) every machine renders a job alike."""
    fits = max(1, AUTO_BATCH_PIXELS // (width * height))
    return min(MAX_AUTO_BATCH, 1 << (fits.bit_length() - 1))


def default_batch_size(width: int, height: int, device: "torch.device | str") -> int:
    """``auto_batch_size`` on the CPU, where a batch's images are the bytes of single renders;
    1 on a GPU, where they can differ by rounding."""
    return auto_batch_size(width, height) if str(device) == "cpu" else 1


# ---- wherever a chunk runs ------------------------------------------------------------------------

def job_renderer(generator: "GeneratorBase", device: "torch.device | str") -> "Renderer":
    """A renderer for batch work: no layer cache (each scene is rendered once); the process keeps
    freed memory for the next render (``engine.device.keep_freed_memory``)."""
    from ganinterface.engine.device import keep_freed_memory
    from ganinterface.engine.renderer import Renderer

    keep_freed_memory()
    return Renderer(generator, device, cache_bytes=0)


def seeds_text(seeds: Sequence[int], noun: str = "seed") -> str:
    """"seed 4", "seeds 4, 5, 9" or "seeds 0-31" (a run of consecutive seeds); ``noun`` for
    other numbered things ("frames 3-5")."""
    if len(seeds) == 1:
        return f"{noun} {seeds[0]}"
    if list(seeds) == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{noun}s {seeds[0]}-{seeds[-1]}"
    return f"{noun}s " + ", ".join(map(str, seeds))


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Torch on one thread for the block (the job's sums must not depend on the core count)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# ---- executors ------------------------------------------------------------------------------------

class Executor(Protocol):
    """Runs a task's chunks somewhere; ``submit`` returns a future of ``Task.run_chunk``'s list."""

    workers: int  # chunks it runs at once
    capacity: int  # chunks worth keeping in flight

    def submit(self, chunk: Chunk) -> "Future[list[Outcome]]": ...

    def ready(self) -> None:
        """Wait until every worker holds the model (a benchmark times start-up apart)."""
        ...

    def close(self, cancel: bool) -> None: ...


class InProcess:
    """Chunks rendered in this process on ``threads`` threads beside the caller's (which writes),
    each thread with its own renderer of the one generator and torch on one thread: the threads
    share the model, no worker has to start, and the bytes are those of one thread."""

    def __init__(self, generator: "GeneratorBase", device: "torch.device | str", task: Task,
                 threads: int = 1):
        self._renderers: queue.SimpleQueue[Renderer] = queue.SimpleQueue()
        for _ in range(threads):  # as many as threads: a chunk that starts finds one free
            self._renderers.put(job_renderer(generator, device))
        self._task = task
        self._cancel = CancelToken()
        self._threads = ThreadPoolExecutor(threads, thread_name_prefix="render")
        self._single_threaded = contextlib.ExitStack()
        self._single_threaded.enter_context(one_thread())
        self.workers = threads
        self.capacity = 2 * threads

    def submit(self, chunk: Chunk) -> "Future[list[Outcome]]":
        return self._threads.submit(self._run, chunk)

    def _run(self, chunk: Chunk) -> list[Outcome]:
        renderer = self._renderers.get()
        try:
            return self._task.run_chunk(renderer, chunk, self._cancel)
        finally:
            self._renderers.put(renderer)

    def ready(self) -> None:
        pass

    def close(self, cancel: bool) -> None:
        if cancel:
            self._cancel.cancel()
        self._threads.shutdown(wait=True, cancel_futures=cancel)
        self._single_threaded.close()


_worker: tuple["Renderer", Task] | None = None  # a worker process's renderer and task


def _start_worker(generator: "GeneratorBase", device: str, task: Task, driver: "Connection") -> None:
    import torch

    global _worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    threading.Thread(target=_exit_without, args=(driver,), daemon=True).start()
    torch.set_num_threads(1)
    _worker = (job_renderer(generator, device), task)


def _exit_without(driver: "Connection") -> None:
    """End this worker once its driver is gone (killed: nobody is left to stop it).  The driver
    holds the only writing end of ``driver``'s pipe, so reading it ends when the driver does.
    (Its process id tells nothing: a worker's parent is the fork server, which lives as long as
    any worker does, and a killed driver stays a zombie until its own parent reaps it.)"""
    try:
        driver.recv()
    except (EOFError, OSError):
        pass
    os._exit(1)


def _run_chunk(chunk: Chunk) -> list[Outcome]:
    assert _worker is not None, "the worker was not started"
    renderer, task = _worker
    return task.run_chunk(renderer, chunk)


def _pid_after(seconds: float) -> int:
    """This worker's process id, after a pause long enough for the other ready workers to take
    their own calls."""
    time.sleep(seconds)
    return os.getpid()


class LocalProcesses:
    """``count`` worker processes, each holding the generator once and rendering on one thread.
    When one dies, the chunks it held fail (and are run again) and the workers are started anew."""

    def __init__(self, generator: "GeneratorBase", device: "torch.device | str", task: Task,
                 count: int):
        self._start = (count, (generator, str(device), task))
        self._driver_alive: "Connection | None" = None  # the writing end workers watch (_exit_without)
        self._pool = self._new_pool()
        self.workers = count
        self.capacity = 2 * count

    def _new_pool(self) -> ProcessPoolExecutor:
        count, arguments = self._start
        context = worker_context()
        if self._driver_alive is not None:  # the broken pool's workers are gone
            self._driver_alive.close()
        reader, self._driver_alive = context.Pipe(duplex=False)
        pool = ProcessPoolExecutor(count, context, _start_worker, (*arguments, reader))
        for _ in range(count):  # the pool starts a process per call while none is idle: all now,
            pool.submit(os.getpid)  # loading the model side by side, not one as each is needed
        reader.close()  # each worker has its own copy now
        return pool

    def submit(self, chunk: Chunk) -> "Future[list[Outcome]]":
        try:
            return self._pool.submit(_run_chunk, chunk)
        except BrokenProcessPool:
            self._pool = self._new_pool()
            return self._pool.submit(_run_chunk, chunk)

    def ready(self) -> None:
        """Calls that pause until each worker has answered one: a worker still loading takes none."""
        answered: set[int] = set()
        while len(answered) < self.workers:
            calls = [self._pool.submit(_pid_after, 0.05) for _ in range(self.workers)]
            answered.update(call.result() for call in calls)

    def close(self, cancel: bool) -> None:
        """Ends the workers at once, whatever they do (no public way to before Python 3.14): they
        hold nothing the driver needs, and one exiting by itself (torch's clean-up) took 2.4 s
        on two busy cores, seconds the job's files were all written."""
        processes = list(getattr(self._pool, "_processes", {}).values())
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(WORKER_END_SECONDS)
            if process.is_alive():
                process.kill()
        # A worker ended while it wrote a result leaves half a message in the results pipe, and
        # the pool's manager thread waits for the rest forever (shutdown would never return, nor
        # would the interpreter's exit).  This process holds the pipe's last writing end: closed,
        # the read ends and the manager thread finds the pool broken and stops.
        writer = getattr(getattr(self._pool, "_result_queue", None), "_writer", None)
        if processes and writer is not None:
            writer.close()
        self._pool.shutdown(wait=True, cancel_futures=cancel)
        self._driver_alive.close()


# What a worker imports before it is given its model: preloaded once by the fork server.
WORKER_MODULES = ("torch", "ganinterface.export.batch", "ganinterface.engine.renderer")


def workers_fork() -> bool:
    """Whether worker processes fork from a server process that imported torch once (Linux), so
    each starts in milliseconds instead of importing torch for a second or two; elsewhere they are
    spawned (macOS forbids much in a forked child of a process that loaded its system frameworks,
    as torch does; Windows cannot fork), and so they are in a frozen app (its fork server would be
    the app itself).  Never forked from this process: a child would inherit torch's thread pool
    in whatever state it was."""
    return sys.platform.startswith("linux") and not getattr(sys, "frozen", False)


def worker_context() -> multiprocessing.context.BaseContext:
    """How worker processes start (``workers_fork``)."""
    if not workers_fork():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(WORKER_MODULES))
    return context


def start_worker_server() -> None:
    """Start the fork server now, so that it imports torch while this process loads its own
    modules and the model: a job's workers then start at once.  Nothing happens where workers
    are spawned, or on one core (jobs run in this process there)."""
    if workers_fork() and cpu_count() > 1:
        from multiprocessing import forkserver

        worker_context()  # sets what the server imports before it starts
        forkserver.ensure_running()


def cpu_count() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_workers(items: int, device: "torch.device | str") -> tuple[int, int]:
    """(worker processes, render threads in this process) when ``--workers`` is left out: on the
    CPU a process per core for a job long enough to repay starting them, else this process with a
    thread per core (up to one per item); on a GPU this process on one thread."""
    if str(device) != "cpu":
        return 1, 1
    cores = cpu_count()
    per_worker = IMAGES_PER_FORKED_WORKER if workers_fork() else IMAGES_PER_SPAWNED_WORKER
    if cores > 1 and items >= per_worker * cores:
        return cores, 1
    return 1, max(1, min(cores, items))


def local_executor(generator: "GeneratorBase", device: "torch.device | str", task: Task,
                   workers: int | None, items: int) -> Executor:
    """``workers`` processes (1: this process, on one thread), or ``default_workers``."""
    processes, threads = (workers, 1) if workers is not None else default_workers(items, device)
    if processes > 1:
        return LocalProcesses(generator, device, task, processes)
    return InProcess(generator, device, task, threads)


# ---- the driver ----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Failure:
    """Items (by index in the job) whose files were not written, and why."""

    indices: tuple[int, ...]
    error: str


@dataclasses.dataclass
class JobReport:
    written: list[Path]  # in the items' order
    skipped: list[Path]
    failures: list[Failure]
    notes: dict[int, str] = dataclasses.field(default_factory=dict)  # index -> its task's note


Output = Path | tuple[Path, ...]  # an item's file, or its files (one per Outcome.files entry)


def chunks_of(indices: Sequence[int], items: Sequence[Any], batch_size: int,
              workers: int = 1) -> list[Chunk]:
    """Chunks of at most about ``CHUNK_IMAGES`` items, each a whole number of batches, shrinking
    towards the end to about 1/``CHUNKS_PER_WORKER_LEFT`` of the items left per worker."""
    pairs = [(index, items[index]) for index in indices]
    largest = batch_size * max(1, math.ceil(CHUNK_IMAGES / batch_size))
    chunks: list[Chunk] = []
    start = 0
    while start < len(pairs):
        share = math.ceil((len(pairs) - start) / (workers * CHUNKS_PER_WORKER_LEFT))
        size = min(largest, batch_size * max(1, math.ceil(share / batch_size)))
        chunks.append(pairs[start:start + size])
        start += size
    return chunks


def run_job(executor: Executor, items: Sequence[Any], paths: Sequence[Output], task: Task, *,
            skip_existing: bool = False, progress: ProgressCallback = no_progress,
            cancel: CancelToken | None = None, retries: int = RETRIES) -> JobReport:
    """Make the file (or files) ``paths[i]`` of ``items[i]`` through ``executor`` running
    ``task``, writing each file atomically as its chunk comes back; ``skip_existing`` leaves
    items whose outputs are all there alone.  A chunk that fails is run again ``retries`` times,
    then reported in ``JobReport.failures`` while the others go on.  Ctrl-C or ``cancel`` stops
    the workers; every file written before stays, each complete.  The executor is closed on the
    way out."""
    outputs = [path if isinstance(path, tuple) else (path,) for path in paths]
    skipped = [i for i, files in enumerate(outputs)
               if skip_existing and all(map(_finished, files))]
    todo = sorted(set(range(len(items))) - set(skipped))
    report = JobReport([], [path for i in skipped for path in outputs[i]], [])
    done = 0
    for chunk, outcomes, error in _chunks_run(executor, items, todo, task, cancel, retries):
        if error is not None:
            report.failures.append(Failure(tuple(i for i, _ in chunk), error))
        else:
            _keep(outcomes, outputs, report)
        done += len(chunk)
        progress(done, len(todo))
    place = {path: i for i, files in enumerate(outputs) for path in files}
    report.written.sort(key=place.__getitem__)  # chunks finish in any order
    return report


def run_in_order(executor: Executor, items: Sequence[Any], task: Task, *,
                 cancel: CancelToken | None = None, retries: int = RETRIES) -> Iterator[Outcome]:
    """``task``'s outcome of each item in the items' order, each as soon as it and those before it
    are back (later chunks run meanwhile); a chunk that fails ``retries`` + 1 times ends it with a
    ``JobError`` naming its items.  Closing the iterator stops the workers."""
    waiting: dict[int, Outcome] = {}
    following = 0
    for chunk, outcomes, error in _chunks_run(executor, items, range(len(items)), task, cancel,
                                              retries):
        if error is not None:
            raise JobError(Failure(tuple(i for i, _ in chunk), error))
        waiting.update((outcome.index, outcome) for outcome in outcomes)
        while following in waiting:
            yield waiting.pop(following)
            following += 1


def gather(executor: Executor, items: Sequence[Any], task: Task, *,
           progress: ProgressCallback = no_progress) -> list[bytes]:
    """The first file of each item's outcome, in the items' order: a job whose results the
    caller keeps rather than writes.  An item without one raises ``JobError``."""
    kept = []
    for outcome in run_in_order(executor, items, task):
        if outcome.error is not None:
            raise JobError(Failure((outcome.index,), outcome.error))
        kept.append(outcome.files[0])
        progress(len(kept), len(items))
    return kept


ExecutorFor = Callable[[Task, int], Executor]  # (task, items) -> where a job of them runs


class JobError(Exception):
    """A chunk of an ordered job failed: its items and why."""

    def __init__(self, failure: Failure):
        super().__init__(failure.error)
        self.failure = failure


def _chunks_run(executor: Executor, items: Sequence[Any], todo: Sequence[int], task: Task,
                cancel: CancelToken | None, retries: int,
                ) -> Iterator[tuple[Chunk, list[Outcome], str | None]]:
    """(chunk, its outcomes, None) as each chunk of ``todo`` finishes, or (chunk, [], why) for one
    that failed ``retries`` + 1 times; closes the executor on the way out (cancelling its work
    unless every chunk finished)."""
    pending = collections.deque(
        (chunk, 0) for chunk in chunks_of(todo, items, task.batch_size, executor.workers))
    in_flight: dict[Future, tuple[Chunk, int]] = {}
    finished = False
    try:
        while pending or in_flight:
            while pending and len(in_flight) < executor.capacity:
                chunk, attempt = pending.popleft()
                in_flight[executor.submit(chunk)] = (chunk, attempt)
            done, _ = wait(in_flight, timeout=0.2, return_when=FIRST_COMPLETED)
            if cancel is not None:
                cancel.raise_if_cancelled()
            for future in done:
                chunk, attempt = in_flight.pop(future)
                error = future.exception()
                if error is None:
                    yield chunk, future.result(), None
                elif not isinstance(error, Exception):  # Ctrl-C where the chunk ran: stop
                    raise error
                elif attempt < retries:
                    pending.append((chunk, attempt + 1))
                else:
                    yield chunk, [], str(error).partition("\n")[0] or type(error).__name__
        finished = True
    finally:
        executor.close(cancel=not finished)


def _keep(outcomes: Iterable[Outcome], outputs: Sequence[tuple[Path, ...]],
          report: JobReport) -> None:
    """Write a chunk's files; its items that failed join the report, grouped by error."""
    failed: dict[str, list[int]] = {}
    for outcome in outcomes:
        if outcome.error is not None or not outcome.files:
            failed.setdefault(outcome.error or "no image", []).append(outcome.index)
            continue
        for path, data in zip(outputs[outcome.index], outcome.files, strict=True):
            _write(path, data)
            report.written.append(path)
        if outcome.note:
            report.notes[outcome.index] = outcome.note
    report.failures.extend(Failure(tuple(indices), error) for error, indices in failed.items())


def _finished(path: Path) -> bool:
    """An output a finished chunk wrote (atomic writes leave no partial file; an empty one would
    be a file system's loss in a power cut)."""
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def _write(path: Path, data: bytes) -> None:
    from ganinterface.export.userfiles import make_folder_for, writing

    make_folder_for(path)
    with writing(path):
        atomic_write_bytes(path, data, durable=False)  # a lost file is rendered again on resume
