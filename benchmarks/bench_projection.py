"""What a projection step costs, and what the search reaches in the time a picture is given.

    .venv/bin/python benchmarks/bench_projection.py [--threads 1] [--repeats 20] [--pictures 4]
                                                   [--device cpu|cuda]

On the built-in model, a step of the search (render the W+ rows, the distance to a procedural
render, the gradient) three ways, medians of ``--repeats`` in one run:

* per-sample weights, float32: the window's own rendering path, whose backward needs a gradient
  for each sample's modulated weight (how the search ran before 2026-12-07);
* the shared weight, float32 (``ProjectionSettings(fast=False)``);
* as shipped: the shared weight, in bfloat16 where the device runs it fast.

Then ``--pictures`` procedural renders (seeds 900000..) projected from the shipped encoder's
guess, with float32 and with the shipped settings, at the default steps: seconds and PSNR each.
The projection report (``demo-eval --projection``) gives the full figures.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from ganinterface.demo import portraits
from ganinterface.engine.device import DeviceError, pick_device, synchronize
from ganinterface.engine.encoder import encode, encoder_beside, load_encoder
from ganinterface.engine.projection import (STEPS_FROM_A_GUESS, ProjectionSettings, project,
                                            search_dtype)
from ganinterface.engine.picture_distance import PerceptualDistance
from ganinterface.models import load_generator

PICTURE_SEEDS = 900_000  # never used by a report or a tuning set


def median_ms(step: Callable[[], None], repeats: int, device: torch.device) -> float:
    step()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def step_figures(generator, target: torch.Tensor, device: torch.device, repeats: int) -> None:
    distance = PerceptualDistance().to(device).against(target)
    rows = generator.w_avg[None, None].repeat(1, generator.num_ws, 1).clone().requires_grad_(True)
    fast = search_dtype(generator, device)

    def step(dtype: torch.dtype) -> Callable[[], None]:
        def run() -> None:
            image = generator.synthesize(rows, noise_mode="const", compute_dtype=dtype).image.float()
            distance(image).sum().backward()
            rows.grad = None
        return run

    generator.fused_modconv = True
    per_sample = median_ms(step(torch.float32), repeats, device)
    generator.fused_modconv = "auto"
    shared = median_ms(step(torch.float32), repeats, device)
    shipped = median_ms(step(fast), repeats, device)
    print(f"a search step, {generator.num_ws} W+ rows, {generator.img_width} x {generator.img_height} px:")
    print(f"  per-sample weights, float32   {per_sample:7.1f} ms")
    print(f"  shared weight, float32        {shared:7.1f} ms   {shared / per_sample:.2f} of per-sample")
    print(f"  shared weight, {str(fast).split('.')[-1]:<15}{shipped:7.1f} ms   {shipped / per_sample:.2f} of per-sample")


def picture_figures(generator, device: torch.device, pictures: int) -> None:
    encoder = load_encoder(encoder_beside(None), generator).to(device)
    images, _ = portraits.render_batch(range(PICTURE_SEEDS, PICTURE_SEEDS + pictures),
                                       generator.img_height, generator.img_width)
    targets = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1).to(device)
    print(f"{pictures} procedural renders from the encoder's guess, {STEPS_FROM_A_GUESS} steps:")
    for label, fast in (("float32", False), ("shipped", True)):
        settings = ProjectionSettings(space="w+", steps=STEPS_FROM_A_GUESS, fast=fast)
        found = [project(generator, target[None], settings, start_w=encode(encoder, target[None]))
                 for target in targets]
        seconds = statistics.mean(f.seconds for f in found)
        psnr = statistics.mean(f.psnr for f in found)
        print(f"  {label:<8} {seconds:5.2f} s a picture, {psnr:5.2f} dB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the report's)")
    parser.add_argument("--repeats", type=int, default=20, help="timed steps per figure (default 20)")
    parser.add_argument("--pictures", type=int, default=4, help="renders projected (default 4; 0: none)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or mps")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    try:
        device = pick_device(args.device)
    except DeviceError as error:
        parser.error(str(error))
    generator = load_generator(None).to(device).requires_grad_(False)
    image, _ = portraits.render_batch([PICTURE_SEEDS], generator.img_height, generator.img_width)
    target = torch.from_numpy(image).permute(0, 3, 1, 2).float().div(127.5).sub(1).to(device)
    print(f"built-in model on {device}, {args.threads} thread(s)")
    step_figures(generator, target, device, args.repeats)
    if args.pictures:
        picture_figures(generator, device, args.pictures)


if __name__ == "__main__":
    main()
