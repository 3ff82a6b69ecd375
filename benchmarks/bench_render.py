"""How fast a StyleGAN2 renders, how much the per-layer cache saves after an edit, and the fast mode.

    .venv/bin/python benchmarks/bench_render.py [--size 256 1024 builtin] [--device cpu|cuda]
        [--threads 2] [--repeats 5] [--sections blocks edits fast precision]

Builds StyleGAN2 generators at the paper's sizes with random weights (256: channel_base 16384;
1024: channel_base 32768; channel_max 512, 8 mapping layers), or loads the built-in model
(``builtin``, trained, 128 x 64), and prints, in one run:

* ``blocks``: a full forward pass (mapping + synthesis, batch 1), then for each block
  ``synthesize(start=<first layer of the block>)`` from a cached state;
* ``edits``: through ``Renderer.render``, a full render, then for each block the re-render after
  a FeatureEdit, a FeatureCopy and a RegionResample at the block's last conv (the edit's mask
  moves a little every run, as in a drag, so nothing comes from the image cache), and the
  FeatureEdit keeping the rest of the picture (``keep_rest``: the render without it comes from the
  cache, its mask's weights are made anew each time);
* ``fast``: the full render in the fast mode (``Renderer.render(draft=True)``) against the exact
  one: time ratio, and the largest difference of the images over several seeds.  Random weights
  make images of any range, so the ToRGB layers are scaled to bring seed 0's into [-1, 1] (the
  differences scale with the image).  Also the median and 99th percentile of the differences, and
  the largest difference of a draft during a drag (an edit at the last conv changed after an exact
  render: the draft goes on from the exact state);
* ``precision`` (not run by default: a full render per layer and seed): for each layer, the
  largest difference when that layer alone runs in the fast mode's precision, to see which layers
  the fast mode's error comes from.

Medians of ``--repeats`` runs after a warm-up; ratios are measured in the same run.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from ganinterface.engine.device import DeviceError, pick_device, synchronize
from ganinterface.engine.kinds import FeatureCopy, FeatureEdit, RegionResample
from ganinterface.engine.renderer import Renderer
from ganinterface.engine.latents import z_from_seed
from ganinterface.engine.scene import Mask, Rect, Scene
from ganinterface.models import load_generator
from ganinterface.models.stylegan2 import StyleGAN2Generator

PAPER = {
    256: dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=256, img_channels=3,
              mapping_kwargs=dict(num_layers=8), channel_base=16384, channel_max=512,
              architecture="skip", conv_clamp=256),
    1024: dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=1024, img_channels=3,
               mapping_kwargs=dict(num_layers=8), channel_base=32768, channel_max=512,
               architecture="skip", conv_clamp=256),
}
FAST_SEEDS = (0, 1, 2, 3, 4)
PRECISION_SEEDS = (0, 1, 2)


def paper_generator(size: int) -> StyleGAN2Generator:
    """The paper's configuration at ``size`` with random weights (seeded), w_avg included, its
    ToRGB layers scaled so that seed 0's image spans [-1, 1] as a trained model's does."""
    torch.manual_seed(size)
    generator = StyleGAN2Generator(**PAPER[size]).eval()
    with torch.no_grad():
        generator.mapping_network.w_avg.normal_()
        scale = 1 / np.abs(Renderer(generator, "cpu", fast=False).render(Scene(seed=0)).raw).max()
        for name, parameter in generator.named_parameters():
            if name.endswith((".torgb.weight", ".torgb.bias")):
                parameter.mul_(float(scale))
    return generator


def named_generator(size: str) -> StyleGAN2Generator:
    """``builtin``: the built-in model; else the paper's configuration at that size."""
    return load_generator(None) if size == "builtin" else paper_generator(int(size))


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = CLOCKS["wall"]


def median_seconds(run: Callable[[], object], repeats: int, device: torch.device) -> float:
    run()  # warm-up: allocator, oneDNN / cuDNN kernel selection
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = clock()
        run()
        synchronize(device)
        times.append(clock() - start)
    return statistics.median(times)


def block_figures(generator: StyleGAN2Generator, device: torch.device, repeats: int) -> None:
    z = torch.randn(1, generator.z_dim, device=device)
    with torch.inference_mode():
        ws = generator.mapping(z)
        full = median_seconds(lambda: generator.synthesize(generator.mapping(z)), repeats, device)
        starts = block_starts(generator)
        states = generator.synthesize(ws, keep_states=starts.values()).states
        print(f"full forward (mapping + synthesis): {full:.3f} s")
        print(f"{'start at':<10} {'synthesize s':>12} {'of full':>8}")
        for block, k in starts.items():
            seconds = median_seconds(
                lambda k=k: generator.synthesize(ws, start=k, state=states[k]), repeats, device)
            print(f"{block:<10} {seconds:>12.3f} {seconds / full:>8.1%}")


def block_starts(generator: StyleGAN2Generator) -> dict[str, int]:
    starts: dict[str, int] = {}
    for k, layer in enumerate(generator.layers):
        starts.setdefault(layer.name.split(".")[0], k)
    return starts


def edit_figures(generator: StyleGAN2Generator, device: torch.device, repeats: int) -> None:
    renderer = Renderer(generator, device)
    scene = Scene(seed=1)

    def full() -> None:
        renderer.clear_cache()
        renderer.render(scene)

    full_seconds = median_seconds(full, repeats, device)
    print(f"full render (Renderer.render, empty cache): {full_seconds:.3f} s")
    print(f"{'edit at':<10} {'feature':>9} {'copy':>9} {'resample':>9} {'kept':>9}   (re-render / full)")
    last_convs = [layer.name for layer in generator.layers if layer.name.endswith("conv1")]
    for layer in last_convs:
        figures = [median_seconds(_rerender(renderer, scene, make, layer), repeats, device) / full_seconds
                   for make in _EDIT_MAKERS]
        print(f"{layer:<10} " + " ".join(f"{f:>9.1%}" for f in figures))


def _mouth(step: int) -> Mask:
    """The mouth box as a drag leaves it after ``step`` moves of its corner."""
    return Mask((Rect(0.35, 0.6, 0.65 + step * 1e-4, 0.75, softness=0.3),))


def _feature(layer: str, step: int) -> FeatureEdit:
    return FeatureEdit(layer, tuple(range(0, 32)), _mouth(step), 2.0)


def _copy(layer: str, step: int) -> FeatureCopy:
    return FeatureCopy(layer, _mouth(step), scale=0.5)


def _resample(layer: str, step: int) -> RegionResample:
    return RegionResample(layer, _mouth(step), seed=7)


def _kept(layer: str, step: int) -> FeatureEdit:
    return dataclasses.replace(_feature(layer, step), keep_rest=True)


_EDIT_MAKERS = (_feature, _copy, _resample, _kept)


def _rerender(renderer: Renderer, scene: Scene, make: Callable[[str, int], object],
              layer: str) -> Callable[[], None]:
    """A render after the edit made by ``make`` changed, as in a drag (its mask moves a little
    every call).  Layers before it come from the cache (filled by the first call, the warm-up).
    Each kind of edit moves its own way, so that no edit finds another's image in the cache."""
    steps = itertools.count(1000 * _EDIT_MAKERS.index(make))

    def render() -> None:
        renderer.render(scene.replace(edits=(make(layer, next(steps)),)))

    return render


def fast_figures(generator: StyleGAN2Generator, device: torch.device, repeats: int) -> None:
    renderer = Renderer(generator, device)
    print(f"fast mode: {renderer.fast_dtype}")
    if renderer.fast_dtype is None:
        draft = renderer.render(Scene(seed=FAST_SEEDS[0]), draft=True)
        print("  (no faster type here: drafts are float32"
              + (f", on {torch.get_num_threads() - 1} of {torch.get_num_threads()} threads: a core left "
                 "to the window (benchmarks/bench_ui.py))" if draft.draft else ", exact renders)"))
        return
    differences = []
    for seed in FAST_SEEDS:
        scene = Scene(seed=seed)
        differences.append(np.abs(renderer.render(scene, draft=True).raw - renderer.render(scene).raw))
    everywhere = np.concatenate([d.ravel() for d in differences])
    scene = Scene(seed=0)

    def timed(draft: bool) -> Callable[[], None]:
        def render() -> None:
            renderer.clear_cache()
            renderer.render(scene, draft=draft)
        return render

    exact_seconds = median_seconds(timed(False), repeats, device)
    fast_seconds = median_seconds(timed(True), repeats, device)
    print(f"  exact {exact_seconds:.3f} s, fast {fast_seconds:.3f} s: "
          f"{exact_seconds / fast_seconds:.2f}x faster; |fast - exact| over seeds {list(FAST_SEEDS)}: "
          f"largest {everywhere.max():.4f}, median {np.median(everywhere):.4f}, "
          f"99th percentile {np.percentile(everywhere, 99):.4f}")
    print(f"  draft during a drag at {_last_conv(generator)}: largest |draft - exact| over seeds "
          f"{list(FAST_SEEDS)}: {max(_drag_difference(generator, device, seed) for seed in FAST_SEEDS):.4f}")


def _last_conv(generator: StyleGAN2Generator) -> str:
    return [layer.name for layer in generator.layers if layer.kind == "conv"][-1]


def _drag_difference(generator: StyleGAN2Generator, device: torch.device, seed: int) -> float:
    """A drag's draft against the exact render of the same scene: the exact render before the
    drag, then a FeatureEdit at the last conv, drafted."""
    renderer = Renderer(generator, device)
    scene = Scene(seed=seed)
    renderer.render(scene)
    edited = scene.replace(edits=(_feature(_last_conv(generator), 0),))
    draft = renderer.render(edited, draft=True).raw
    return float(np.abs(draft - Renderer(generator, device, fast=False).render(edited).raw).max())


def precision_figures(generator: StyleGAN2Generator, device: torch.device, repeats: int) -> None:
    dtype = Renderer(generator, device, fast=True).fast_dtype
    print(f"{'layer':<12} {'largest |diff| with only this layer in ' + str(dtype):>48}")
    with torch.inference_mode():
        ws_list = [generator.mapping(torch.from_numpy(z_from_seed(seed, generator.z_dim)).to(device))
                   for seed in PRECISION_SEEDS]
        exact = [generator.synthesize(ws).image for ws in ws_list]
        for k, layer in enumerate(generator.layers):
            worst = max(float((_one_layer_reduced(generator, ws, k, dtype) - image).abs().max())
                        for ws, image in zip(ws_list, exact))
            print(f"{layer.name:<12} {worst:>48.4f}")


def _one_layer_reduced(generator: StyleGAN2Generator, ws: torch.Tensor, k: int, dtype: torch.dtype) -> torch.Tensor:
    """The image with layer ``k`` in ``dtype`` and every other layer in float32."""
    before = generator.synthesize(ws, stop=k, keep_states=[k]).states[k] if k else None
    after = generator.synthesize(ws, start=k, state=before, stop=k + 1, keep_states=[k + 1],
                                 compute_dtype=dtype).states[k + 1]
    if k + 1 == len(generator.layers):
        return after["img"]
    return generator.synthesize(ws, start=k + 1, state=after).image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", nargs="+", choices=[*map(str, sorted(PAPER)), "builtin"],
                        default=["256", "1024"])
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or mps")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per figure (default 5)")
    parser.add_argument("--sections", nargs="+", choices=["blocks", "edits", "fast", "precision"],
                        default=["blocks", "edits", "fast"])
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall time (default), or this process's CPU time: steadier on a busy "
                             "machine, comparable to wall time only with --threads 1 on the CPU")
    args = parser.parse_args()
    global clock
    clock = CLOCKS[args.clock]
    torch.set_num_threads(args.threads)
    try:
        device = pick_device(args.device)
    except DeviceError as error:
        parser.error(str(error))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    for size in args.size:
        generator = named_generator(size).to(device)
        what = ("built-in model (trained)" if size == "builtin"
                else f"{size}x{size} (paper config, random weights)")
        print(f"\n== StyleGAN2 {what}, batch 1, {device}, "
              f"{args.threads} threads, median of {args.repeats}, {args.clock} clock")
        sections = {"blocks": block_figures, "edits": edit_figures, "fast": fast_figures,
                    "precision": precision_figures}
        for name in args.sections:
            sections[name](generator, device, args.repeats)


if __name__ == "__main__":
    main()
