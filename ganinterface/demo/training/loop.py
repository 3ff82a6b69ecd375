"""The training loop: one process, or data-parallel worker processes that meet once per step.

On a busy CPU, ``workers=2, threads=1`` shares the machine far better than one process with two
OpenMP threads.  Where there is a GPU (``device="auto"`` picks CUDA) the networks run there and the
portraits are rendered ahead of time by a pool of CPU processes.  SIGTERM/SIGINT end the step in
progress, save the state and return.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import math
import os
import signal
import time

import torch

from ganinterface.demo.training.data import DEFAULT_DATA_SOURCE, DataSource, PrefetchingSource
from ganinterface.demo.training.hardware import describe_hardware
from ganinterface.demo.training.outputs import write_outputs
from ganinterface.demo.training.settings import RETUNABLE, RunOptions, TrainingError, TrainSettings
from ganinterface.demo.training.state import load_or_create, save_state
from ganinterface.demo.training.trainer import LossStats, Trainer, utc_now

log = logging.getLogger(__name__)


def run(settings: TrainSettings, options: RunOptions, data_source: DataSource | None = None,
        max_steps: int | None = None) -> Trainer:
    """Train until ``options.minutes`` / ``options.kimg`` / ``max_steps`` or a signal; save; return.

    With ``options.workers`` > 1 the batch is split over that many single-process workers (this
    process is worker 0 and alone saves, exports and logs).  On a busy machine, separate processes
    that meet once per step share the CPU far better than OpenMP threads, which wait for each other
    at every operation.
    """
    options.run_dir.mkdir(parents=True, exist_ok=True)
    if options.workers == 1:
        device = _training_device(options)
        if options.data_workers is None:
            options = dataclasses.replace(
                options, data_workers=max(1, (os.cpu_count() or 1) - 2) if device.type == "cuda" else 0)
        prefetcher = None
        if options.data_workers:
            prefetcher = PrefetchingSource(data_source or DEFAULT_DATA_SOURCE, options.data_workers)
        try:
            return _train_loop(settings, options, prefetcher or data_source, max_steps, device=device)
        finally:
            if prefetcher is not None:
                prefetcher.close()
    if _training_device(options).type != "cpu":
        raise TrainingError("--workers > 1 trains on the CPU: add --device cpu, or train on the "
                            "GPU with one worker")
    if settings.batch % (4 * options.workers):
        raise TrainingError(f"batch {settings.batch} does not split into groups of 4 over "
                            f"{options.workers} workers")
    import torch.distributed as dist
    import torch.multiprocessing as mp

    address = f"tcp://127.0.0.1:{_free_port()}"
    context = mp.get_context("spawn")
    workers = [context.Process(target=_worker_main, daemon=True,
                               args=(settings, options, max_steps, rank, address))
               for rank in range(1, options.workers)]
    for worker in workers:
        worker.start()
    dist.init_process_group("gloo", init_method=address, rank=0, world_size=options.workers,
                            timeout=datetime.timedelta(minutes=10))
    try:
        return _train_loop(settings, options, data_source, max_steps, rank=0)
    finally:
        dist.destroy_process_group()
        for worker in workers:
            worker.join(timeout=60)


def _training_device(options: RunOptions) -> torch.device:
    from ganinterface.engine.device import DeviceError, pick_device

    try:
        device = pick_device(options.device)
    except DeviceError as error:
        raise TrainingError(str(error)) from None
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # shapes never change during a run
    return device


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _worker_main(settings: TrainSettings, options: RunOptions, max_steps: int | None, rank: int,
                 address: str) -> None:
    import torch.distributed as dist

    # Ctrl-C reaches the whole process group: worker 0 decides when everyone stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    dist.init_process_group("gloo", init_method=address, rank=rank, world_size=options.workers,
                            timeout=datetime.timedelta(minutes=10))
    try:
        _train_loop(settings, options, None, max_steps, rank=rank)
    finally:
        dist.destroy_process_group()


@dataclasses.dataclass
class _Plan:
    """What all workers do next; decided by worker 0 (it alone sees the clock and the signals)."""

    stop: bool = False
    save: bool = False
    export: bool = False

    def shared(self, world: int) -> _Plan:
        if world == 1:
            return self
        import torch.distributed as dist

        flags = torch.tensor([self.stop, self.save, self.export], dtype=torch.int32)
        dist.broadcast(flags, src=0)
        return _Plan(*(bool(flag) for flag in flags))


def _train_loop(settings: TrainSettings, options: RunOptions, data_source: DataSource | None,
                max_steps: int | None, rank: int = 0, device: torch.device | str = "cpu") -> Trainer:
    threads_before = torch.get_num_threads()
    torch.set_num_threads(options.threads)
    trainer = load_or_create(settings, options, data_source, quiet=rank > 0, device=device)
    trainer.rank, trainer.world = rank, options.workers
    trainer.sessions.append(dict(started=utc_now(), workers=options.workers, threads=options.threads,
                                 hardware=describe_hardware(trainer.device, options),
                                 images_at_start=trainer.images_seen,
                                 **{name: getattr(trainer.settings, name) for name in RETUNABLE},
                                 **trainer.session_note))
    trainer.session_note = {}
    stop = StopFlag()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)} if rank == 0 else {}
    start = last_save = last_export = time.monotonic()
    progress = _ProgressLog(trainer, options.log_seconds)
    try:
        while True:
            now = time.monotonic()
            plan = _Plan(
                stop=(stop.signal is not None
                      or (options.minutes is not None and now - start >= options.minutes * 60)
                      or (options.kimg is not None and trainer.images_seen >= options.kimg * 1000)
                      or (max_steps is not None and trainer.step >= max_steps)),
                save=now - last_save >= options.checkpoint_minutes * 60,
                export=now - last_export >= options.export_minutes * 60,
            ).shared(options.workers)
            if plan.stop:
                break
            if rank == 0 and plan.save:
                save_state(trainer, options.run_dir)
                last_save = time.monotonic()
            if rank == 0 and plan.export:
                write_outputs(trainer, options)
                last_export = time.monotonic()
            step_start = time.monotonic()
            stats = trainer.train_step()
            trainer.train_seconds += time.monotonic() - step_start
            if rank > 0:
                continue
            if not all(math.isfinite(v) for v in (stats.g, stats.d, stats.r1)):
                raise TrainingError(f"losses are not finite at step {trainer.step}; "
                                    f"state kept at the last checkpoint in {options.run_dir}")
            progress.add(stats)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        torch.set_num_threads(threads_before)  # a caller in this process goes on as it was
    if rank > 0:
        return trainer
    save_state(trainer, options.run_dir)
    if stop.signal is not None:
        log.info("stopped by signal %d at step %d; state saved in %s", stop.signal, trainer.step,
                 options.run_dir)
    else:
        write_outputs(trainer, options)
        log.info("finished at step %d, %.1f kimg; state saved in %s", trainer.step,
                 trainer.images_seen / 1000, options.run_dir)
    return trainer


class _ProgressLog:
    """Worker 0's line every ``seconds``: speed, and the mean losses since the previous line."""

    def __init__(self, trainer: Trainer, seconds: float):
        self.trainer, self.seconds = trainer, seconds
        self.last = time.monotonic()
        self.steps_at_last = self._steps()
        self.window = LossStats()

    def _steps(self) -> int:
        return self.trainer.step + self.trainer.warmup_steps

    def add(self, stats: LossStats) -> None:
        self.window.add(stats)
        now = time.monotonic()
        if now - self.last < self.seconds:
            return
        trainer, steps = self.trainer, self._steps()
        rate = (steps - self.steps_at_last) * trainer.settings.batch / (now - self.last)
        warming = (f"  D warm-up, {trainer.d_warmup_left / 1000:.1f} kimg left"
                   if trainer.d_warmup_left else "")
        log.info("step %d  %.1f kimg  %.1f img/s  %s%s", trainer.step, trainer.images_seen / 1000,
                 rate, self.window.mean(), warming)
        self.last, self.steps_at_last, self.window = now, steps, LossStats()


class StopFlag:
    """Set by SIGTERM/SIGINT; the loop finishes its step, saves and returns."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def __call__(self, signum: int, frame: object) -> None:
        self.signal = signum
