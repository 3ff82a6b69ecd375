"""Batch-job chunks on a Ray cluster (``pip install "ganinterface[cluster]"``).

The generator goes into the object store once; each actor takes it from there when it starts and
keeps it, so a chunk carries only its scenes.  One actor per GPU when the cluster has GPUs, else
one per CPU rendering on one thread (``export.batch``: the same bytes as local workers); the
command's ``--device`` is the driver's, and the nodes may have others.
Chunks come back to the driver, which writes the files: the cluster needs no shared disk.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from ganinterface.export.batch import Chunk, Outcome, Task, job_renderer

if TYPE_CHECKING:
    from ganinterface.models.base import GeneratorBase

INSTALL_HINT = 'Ray is not installed: pip install "ganinterface[cluster]"'
LOCAL = "local"  # --ray without an address: start a cluster on this machine


class _ChunkRenderer:
    """A Ray actor: one renderer for the job's lifetime."""

    def __init__(self, generator: "GeneratorBase", device: str, task: Task):
        import torch

        torch.set_num_threads(1)
        self._renderer = job_renderer(generator, device)
        self._task = task

    def run(self, chunk: Chunk) -> list[Outcome]:
        return self._task.run_chunk(self._renderer, chunk)

    def ready(self) -> None:
        """Nothing: answers once the actor has started."""


class RayCluster:
    """An executor over the Ray cluster at ``address`` ("auto": the one this machine belongs to;
    ``LOCAL``: a new one here, unless this process already started one)."""

    def __init__(self, address: str, generator: "GeneratorBase", task: Task):
        try:
            import ray
        except ImportError:
            raise ImportError(INSTALL_HINT) from None
        self._ray = ray
        self._started = not ray.is_initialized()
        if self._started:
            ray.init(address=None if address == LOCAL else address, logging_level="warning",
                     log_to_driver=False, include_dashboard=False)
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        options: dict[str, Any] = {"num_gpus": 1, "num_cpus": 0} if gpus else {"num_cpus": 1}
        actor = ray.remote(**options)(_ChunkRenderer)
        model = ray.put(generator)  # once: every actor reads the same object
        self._actors = [actor.remote(model, "cuda" if gpus else "cpu", task)
                        for _ in range(gpus or max(1, int(resources.get("CPU", 1))))]
        self._load = [0] * len(self._actors)  # chunks in flight per actor
        self._lock = threading.Lock()  # futures complete on Ray's thread
        self.workers = len(self._actors)
        self.capacity = 2 * self.workers

    def submit(self, chunk: Chunk) -> "Future[list[Outcome]]":
        with self._lock:
            slot = self._load.index(min(self._load))
            self._load[slot] += 1
        future: Future[list[Outcome]] = self._actors[slot].run.remote(chunk).future()
        future.add_done_callback(lambda _: self._done(slot))
        return future

    def _done(self, slot: int) -> None:
        with self._lock:
            self._load[slot] -= 1

    def ready(self) -> None:
        self._ray.get([actor.ready.remote() for actor in self._actors])

    def close(self, cancel: bool) -> None:
        for actor in self._actors:
            self._ray.kill(actor)
        if self._started:
            self._ray.shutdown()
