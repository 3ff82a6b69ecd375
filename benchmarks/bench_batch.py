"""Batch throughput: one process, N local worker processes and a local Ray cluster on the same job.

    .venv/bin/python benchmarks/bench_batch.py [--images 500] [--batch-size auto|N] [--workers N]
                                               [--no-ray] [--frames 120] [--rounds 3]

Renders seeds 0.. of the built-in model to PNGs (as ``ganinterface render --seeds`` does) with:
today's loop (``Renderer.render`` then ``write_png``, one image at a time, torch's default threads);
this process with one render thread and with N; 1 and N single-threaded worker processes; what
``render`` picks when ``--workers`` is left out; N worker processes in batches of 1 (the batched
figure's baseline: the same bytes); and a local Ray cluster of N CPUs.  Every executor
is started first; then ``--rounds`` rounds run each once in turn and each one's best round counts,
so that all are measured alike on a busy machine.  Prints images/s and the ratios the aims are stated in, then a GIF of ``--frames`` frames (0: none) made as
``animate`` makes it against render-then-encode, then an estimate of 1M images on 10 GPU nodes from
the measured costs.  Start-up (spawning workers, starting Ray) and closing are timed apart: they
are paid once per job, not per image.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

from ganinterface.engine.renderer import Renderer
from ganinterface.engine.scene import Scene
from ganinterface.export import batch
from ganinterface.export.userfiles import write_png
from ganinterface.models.loading import load_generator


def timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def today(generator, scenes, folder: Path) -> float:
    """The loop ``render`` ran before batch jobs: render, then write, one image at a time."""
    renderer = Renderer(generator, "cpu")
    renderer.render(Scene(seed=10**6))  # warm-up: allocator, oneDNN kernel selection
    return timed(lambda: [write_png(folder / f"{s.seed}.png", renderer.render(s).image, s)
                          for s in scenes])


def started(make_executor, folder: Path, work: batch.Work) -> tuple[batch.Executor, float]:
    """An executor whose every worker holds the model and has rendered once, and the seconds
    that took."""
    began = time.perf_counter()
    executor = make_executor()
    executor.ready()
    warm = [Scene(seed=10**6 + i) for i in range(2 * executor.capacity)]
    batch.run_job(executor_that_stays(executor), warm,
                  [folder / f"warm{i}.png" for i in range(len(warm))], work)
    return executor, time.perf_counter() - began


class executor_that_stays:
    """The executor, not closed by the warm-up job."""

    def __init__(self, executor):
        self._executor = executor
        self.workers = executor.workers
        self.capacity = executor.capacity

    def submit(self, chunk):
        return self._executor.submit(chunk)

    def close(self, cancel: bool) -> None:
        pass


def ray_task_overhead(samples: int = 200) -> float:
    """Seconds a trivial Ray task costs the driver, submitted and gathered in one go."""
    import ray

    @ray.remote(num_cpus=0)
    def nothing() -> None:
        return None

    ray.get([nothing.remote() for _ in range(20)])
    return timed(lambda: ray.get([nothing.remote() for _ in range(samples)])) / samples


def animation(generator, frames: int, folder: Path) -> tuple[float, float]:
    """(render then encode, as ``animate`` makes it) seconds for a GIF of ``frames`` frames, at
    twice the model's size."""
    from ganinterface.engine import animation as curves
    from ganinterface.export.animation import export_frames
    from ganinterface.export.jobs import export_animation_on, frame_task

    renderer = Renderer(generator, "cpu", cache_bytes=0)
    scenes = curves.interpolate_w(Scene(seed=0), [0, 1, 2], frames, renderer.base_ws)
    size = (generator.img_width * 2, generator.img_height * 2)  # 128 x 256 px
    export_frames([renderer.render(s).image for s in scenes[:4]], folder / "warm.gif", fps=24,
                  size=size)
    in_sequence = timed(lambda: export_frames([renderer.render(s).image for s in scenes],
                                              folder / "a.gif", fps=24, size=size))
    as_animate = timed(lambda: export_animation_on(
        batch.local_executor(generator, "cpu", frame_task(), None, len(scenes)), scenes,
        folder / "b.gif", fps=24, size=size))
    return in_sequence, as_animate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--batch-size", default="auto",
                        help="auto (render's default on the CPU) or N; N workers also run batch 1")
    parser.add_argument("--workers", type=int, default=batch.cpu_count())
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs of each, interleaved; the best counts (a busy machine)")
    args = parser.parse_args()
    generator = load_generator(None)
    size = (batch.auto_batch_size(generator.img_width, generator.img_height)
            if args.batch_size == "auto" else int(args.batch_size))
    work = batch.Work(batch.PngImage(), size)
    single = batch.Work(batch.PngImage(), 1)
    scenes = [Scene(seed=seed) for seed in range(args.images)]
    n = args.workers
    print(f"built-in model {generator.img_width}x{generator.img_height}, {args.images} images, "
          f"batch size {size}, {n} workers, load {os.getloadavg()[0]:.2f}")
    root = Path(tempfile.mkdtemp(prefix="bench_batch"))
    processes, threads = batch.default_workers(args.images, "cpu")
    default_name = (f"default ({processes} processes)" if processes > 1 else
                    f"default ({threads} threads)")
    makers = {
        "this process, 1 thread": lambda: batch.InProcess(generator, "cpu", work),
        f"this process, {n} threads": lambda: batch.InProcess(generator, "cpu", work, n),
        "1 worker process": lambda: batch.LocalProcesses(generator, "cpu", work, 1),
        f"{n} worker processes": lambda: batch.LocalProcesses(generator, "cpu", work, n),
        default_name: lambda: batch.local_executor(generator, "cpu", work, None, args.images),
    }
    works = dict.fromkeys(makers, work)
    if size > 1:
        makers[f"{n} worker processes, batch 1"] = lambda: batch.LocalProcesses(generator, "cpu", single, n)
        works[f"{n} worker processes, batch 1"] = single
    if not args.no_ray:
        from ganinterface.export.ray_executor import RayCluster

        makers[f"Ray, {n} CPUs"] = lambda: RayCluster("local", generator, work)
        works[f"Ray, {n} CPUs"] = work
    executors = {}
    try:
        overhead = None
        if not args.no_ray:
            import ray

            ray.init(num_cpus=n, include_dashboard=False, logging_level="warning",
                     log_to_driver=False)
            overhead = ray_task_overhead()
        for index, (name, make) in enumerate(makers.items()):
            (root / str(index)).mkdir()
            executors[name], startup = started(make, root / str(index), works[name])
            print(f"{name:<28} started in {startup:.1f} s")
        best = dict.fromkeys(["today (1 process)", *makers], 0.0)
        for round_ in range(args.rounds):  # interleaved: each round sees the machine alike
            folder = root / f"round{round_}"
            folder.mkdir()
            for name in best:
                (folder / name).mkdir()
                if name.startswith("today"):
                    seconds = today(generator, scenes, folder / name)
                else:
                    paths = [folder / name / f"{s.seed}.png" for s in scenes]
                    seconds = timed(lambda: batch.run_job(executor_that_stays(executors[name]),
                                                          scenes, paths, works[name]))
                best[name] = max(best[name], args.images / seconds)
            print(f"round {round_ + 1} of {args.rounds}, load {os.getloadavg()[0]:.2f}")
        rates = best
        for name, rate in rates.items():
            print(f"{name:<28} {rate:7.1f} images/s")
        print()
        one, many, today_rate = (rates["1 worker process"], rates[f"{n} worker processes"],
                                 rates["today (1 process)"])
        print(f"{n} workers / ({n} x 1 worker):   {many / (n * one):.2f}   (aim >= 0.90)")
        print(f"default / today:               {rates[default_name] / today_rate:.2f}"
              "   (aim >= 3.00, issue 16)")
        print(f"{n} threads / today:             {rates[f'this process, {n} threads'] / today_rate:.2f}")
        print(f"{n} workers / today:             {many / today_rate:.2f}")
        if size > 1:
            print(f"batch {size} / batch 1 ({n} workers): {many / rates[f'{n} worker processes, batch 1']:.2f}"
                  "   (the same bytes)")
        if overhead is not None:
            print(f"Ray / {n} workers:               {rates[f'Ray, {n} CPUs'] / many:.2f}"
                  "   (aim >= 0.85)")
        if args.frames:
            (root / "anim").mkdir()
            in_sequence, as_animate = animation(generator, args.frames, root / "anim")
            print(f"\n{args.frames}-frame GIF, 128x256 px: render then encode {in_sequence:.1f} s, "
                  f"as animate makes it {as_animate:.1f} s: {in_sequence / as_animate:.2f}x"
                  "   (aim >= 1.30)")
        if overhead is not None:
            estimate(one, overhead, gpu_rate(generator), write_seconds(root / "writes"))
    finally:
        for executor in executors.values():
            executor.close(cancel=False)
        if not args.no_ray:
            import ray

            ray.shutdown()
        shutil.rmtree(root, ignore_errors=True)


def gpu_rate(generator) -> float | None:
    """Images/s of one GPU rendering this model in batches of 32, if this machine has one."""
    if not torch.cuda.is_available():
        return None
    renderer = Renderer(generator, "cuda", cache_bytes=0)
    scenes = [Scene(seed=seed) for seed in range(32)]
    renderer.render_batch(scenes)
    return 10 * len(scenes) / timed(lambda: [renderer.render_batch(scenes) for _ in range(10)])


def write_seconds(folder: Path, count: int = 200) -> float:
    """Seconds the driver takes to write one PNG of this model's size, atomically."""
    data = batch.PngImage().encode(Renderer(load_generator(None), "cpu").render(Scene()), Scene())
    folder.mkdir()
    return timed(lambda: [batch._write(folder / f"{i}.png", data) for i in range(count)]) / count


def estimate(one_worker_rate: float, task_overhead: float, gpu: float | None,
             write_s_per_image: float) -> None:
    """1M images on 10 GPU nodes, from what was measured here and stated assumptions."""
    images, nodes = 1_000_000, 10
    gpu_speedup = 50  # assumed when no GPU is here: a GPU renders ~50x one CPU core's rate
    per_image = 1 / gpu if gpu else 1 / (one_worker_rate * gpu_speedup)
    chunk = batch.CHUNK_IMAGES
    tasks = images / chunk
    render_s = images * per_image / nodes
    driver_s = tasks * task_overhead  # the driver submits and gathers every chunk
    write_s = images * write_s_per_image
    total = max(render_s, driver_s + write_s)
    gpu_text = (f"one GPU here renders {gpu:.0f} images/s" if gpu else
                f"one CPU worker renders {one_worker_rate:.0f} images/s here; assuming a GPU does "
                f"{gpu_speedup}x that,")
    print(f"\n1M images on {nodes} GPU nodes (one actor each): {gpu_text} "
          f"rendering takes {render_s / 60:.0f} min spread over the nodes; {tasks:.0f} chunks of "
          f"{chunk} at {task_overhead * 1e3:.2f} ms Ray overhead each cost the driver "
          f"{driver_s / 60:.1f} min and writing the files ({write_s_per_image * 1e3:.2f} ms each "
          f"here) {write_s / 60:.0f} min, so the job "
          f"takes about {total / 60:.0f} min, bound by "
          f"{'the GPUs' if render_s >= driver_s + write_s else 'the driver'}.")


if __name__ == "__main__":
    main()
