"""How fast a StyleGAN2 renders, and how much a per-layer cache saves after a late change.

    .venv/bin/python benchmarks/bench_render.py [--threads 2] [--repeats 7] [--dtype float32]

Builds a 256x256 StyleGAN2 at the paper's 256 size (channel_base 16384, channel_max 512, 8 mapping
layers, random weights), times a full forward pass (mapping + synthesis, batch 1), then for each
block times ``synthesize(start=<first layer of the block>)`` from a cached state: what the renderer
recomputes after an edit at that block.  Medians of ``--repeats`` runs, after a warm-up.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from ganinterface.models.stylegan2 import StyleGAN2Generator

PAPER256 = dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=256, img_channels=3,
                mapping_kwargs=dict(num_layers=8), channel_base=16384, channel_max=512,
                architecture="skip", conv_clamp=256)


def median_seconds(run: Callable[[], object], repeats: int, clock: Callable[[], float]) -> float:
    run()  # warm-up: allocator, oneDNN kernel selection
    times = []
    for _ in range(repeats):
        start = clock()
        run()
        times.append(clock() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per figure (default 7)")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                        help="synthesis compute type (default float32, the exact one)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="wall time (default), or this process's CPU time: steadier on a busy "
                             "machine, comparable to wall time only with --threads 1")
    args = parser.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    generator = StyleGAN2Generator(**PAPER256).eval()
    generator.compute_dtype = getattr(torch, args.dtype)
    z = torch.randn(1, generator.z_dim)

    with torch.inference_mode():
        ws = generator.mapping(z)
        full = median_seconds(lambda: generator.synthesize(generator.mapping(z)), args.repeats, clock)
        block_starts = {}
        for k, layer in enumerate(generator.layers):
            block_starts.setdefault(layer.name.split(".")[0], k)
        states = generator.synthesize(ws, keep_states=block_starts.values()).states
        print(f"StyleGAN2 256x256 paper256, batch 1, {args.dtype}, {args.threads} threads, "
              f"median of {args.repeats}, {args.clock} clock")
        print(f"full forward (mapping + synthesis): {full:.3f} s")
        print(f"{'change at':<10} {'re-render s':>12} {'of full':>8}")
        for block, k in block_starts.items():
            seconds = median_seconds(
                lambda k=k: generator.synthesize(ws, start=k, state=states[k]), args.repeats, clock)
            print(f"{block:<10} {seconds:>12.3f} {seconds / full:>8.0%}")


if __name__ == "__main__":
    main()
