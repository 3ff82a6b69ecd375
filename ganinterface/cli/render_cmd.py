"""``ganinterface render`` and ``ganinterface features``: images and feature-map grids from the shell.

Seeds mean what they mean in NVlabs' gen_images.py, so seed 42 here is seed 42 there.  ``--scene``
renders Scenes saved by the window (a .json file, or a PNG carrying one) through the same Renderer,
so the pixels are the window's.  Outputs are written atomically: ``.png`` (carrying the Scene) or
``.npy`` (the raw float32 generator output (3, H, W), unclamped; for ``features``, the activations).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ganinterface.cli import UserError, chosen_device

if TYPE_CHECKING:
    from ganinterface.engine.renderer import Renderer, RenderResult
    from ganinterface.engine.scene import Scene

OUTPUT_TYPES = (".png", ".npy")


def register(subparsers: argparse._SubParsersAction) -> None:
    render = subparsers.add_parser(
        "render", help="render seeds (or saved scenes) to .png or .npy",
        description="Render images for seeds as NVlabs' gen_images.py does, or re-render saved "
                    "scenes. Example: ganinterface render my.pkl --seeds 0-7 --trunc 0.7 "
                    "-o out/seed{seed}.png")
    _add_common_options(render)
    render.add_argument("-o", "--output", default="out/seed{seed}.png", metavar="PATTERN",
                        help="output file; {seed}, {index} and {name} (scene file name) are filled "
                             "in; .png image or .npy raw float32 (3, H, W) (default: %(default)s)")
    render.set_defaults(handler=_render)

    features = subparsers.add_parser(
        "features", help="draw a layer's feature maps as a grid image",
        description="Colour every channel of one layer red (negative), white (zero), green "
                    "(positive) and lay them out in a grid. Example: ganinterface features my.pkl "
                    "--seeds 3 --layer b64.conv1 -o grid.png")
    _add_common_options(features)
    features.add_argument("--layer", required=True, help="layer name, e.g. b64.conv1")
    features.add_argument("--scale", choices=("shared", "channel"), default="shared",
                          help="one colour scale for the layer, or one per channel (default: shared)")
    features.add_argument("--palette", default="red-white-green",
                          help="red-white-green (default) or colour-blind (orange-white-blue)")
    features.add_argument("--columns", type=int, default=None, help="tiles per row (default: square)")
    features.add_argument("-o", "--output", default="features-seed{seed}.png", metavar="PATTERN",
                          help="output file; .png grid or .npy activations (C, h, w) float32 "
                               "(default: %(default)s)")
    features.set_defaults(handler=_features)


def _add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", nargs="?", metavar="CKPT", default=None,
                        help="NVlabs .pkl, rosinality .pt or ganinterface .safetensors "
                             "(default: the built-in portrait model)")
    parser.add_argument("--seeds", default=None, help="seeds, e.g. 0,3,10-20 (default: 0)")
    parser.add_argument("--trunc", "--truncation-psi", dest="truncation_psi", type=float,
                        default=None, metavar="PSI", help="truncation psi (default 1: none)")
    parser.add_argument("--trunc-cutoff", "--truncation-cutoff", dest="truncation_cutoff", type=int,
                        default=None, metavar="N", help="truncate only the first N ws")
    parser.add_argument("--class", dest="class_index", type=int, default=None, metavar="K",
                        help="class label, for conditional models")
    parser.add_argument("--noise-mode", choices=("const", "random", "none"), default=None,
                        help="const (default), random or none")
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: the fastest present)")
    parser.add_argument("--scene", action="append", default=[], metavar="FILE",
                        help="render a saved scene (.json, or a .png that carries one) instead of "
                             "seeds; may be given several times")


# ---- what to render -----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Job:
    scene: "Scene"
    name: str  # the scene file's stem, or "seed{seed}"


def jobs_from_args(args: argparse.Namespace) -> list[Job]:
    from ganinterface.engine.latents import LatentError, parse_seeds
    from ganinterface.engine.scene import Scene

    if args.scene:
        latent_options = [flag for flag, value in (("--seeds", args.seeds),
                                                   ("--trunc", args.truncation_psi),
                                                   ("--trunc-cutoff", args.truncation_cutoff),
                                                   ("--class", args.class_index),
                                                   ("--noise-mode", args.noise_mode))
                          if value is not None]
        if latent_options:
            raise UserError(f"{latent_options[0]} cannot be combined with --scene (the scene file "
                            "sets the latent)")
        return [Job(_read_scene(path), Path(path).stem) for path in args.scene]
    try:
        seeds = parse_seeds(args.seeds if args.seeds is not None else "0")
    except LatentError as error:
        raise UserError(str(error)) from None
    psi = 1.0 if args.truncation_psi is None else args.truncation_psi
    checkpoint = None if args.checkpoint is None else str(Path(args.checkpoint).resolve())
    return [Job(Scene(checkpoint=checkpoint, seed=seed, class_index=args.class_index,
                      truncation_psi=psi, truncation_cutoff=args.truncation_cutoff,
                      noise_mode=args.noise_mode or "const"), f"seed{seed}")
            for seed in seeds]


def _read_scene(path: str) -> "Scene":
    from ganinterface.engine.scene import Scene, SceneFormatError

    file = Path(path)
    try:
        if file.suffix.lower() == ".png":
            from ganinterface.export.images import read_png_scene

            scene = read_png_scene(file)
            if scene is None:
                raise UserError(f"{path}: this PNG carries no ganinterface scene")
            return scene
        return Scene.from_json(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such scene file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: cannot read ({error})") from None
    except SceneFormatError as error:
        message = str(error)
        raise UserError(message if message.startswith(str(path)) else f"{path}: {message}") from None


def output_paths(pattern: str, jobs: Sequence[Job]) -> list[Path]:
    """One output file per job from ``pattern``; refuses unknown placeholders and clashing names."""
    try:
        paths = [Path(pattern.format(seed=job.scene.seed, index=index, name=job.name))
                 for index, job in enumerate(jobs)]
    except (KeyError, IndexError, ValueError) as error:
        raise UserError(f"output pattern {pattern!r} is not usable ({error!s}); placeholders are "
                        "{seed}, {index} and {name}") from None
    if len(set(paths)) < len(paths):
        raise UserError(f"output pattern {pattern!r} gives several images the same file; put "
                        "{seed} (or {index}) in it, e.g. out/seed{seed}.png")
    suffixes = {path.suffix.lower() for path in paths}
    if not suffixes <= set(OUTPUT_TYPES):
        raise UserError(f"output {pattern!r} must end in .png or .npy")
    return paths


# ---- running ------------------------------------------------------------------------------------------

class _Renderers:
    """One Renderer per checkpoint (the CKPT argument wins over the checkpoint a scene names)."""

    def __init__(self, args: argparse.Namespace):
        self.device = chosen_device(args.device)
        self.override = args.checkpoint
        self._loaded: dict[str | None, Renderer] = {}

    def for_scene(self, scene: "Scene") -> "Renderer":
        from ganinterface.engine.renderer import Renderer
        from ganinterface.models.loading import load_generator

        checkpoint = self.override if self.override is not None else scene.checkpoint
        if checkpoint not in self._loaded:
            self._loaded[checkpoint] = Renderer(load_generator(checkpoint, self.device), self.device)
        return self._loaded[checkpoint]


def _rendered(renderer: "Renderer", job: Job, taps: Sequence[str] = ()) -> "RenderResult":
    result = renderer.render(job.scene, taps)
    if result.error is not None:
        raise UserError(f"{job.name}: {result.error}")
    return result


def _write(path: Path, write) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path)
    except OSError as error:
        raise UserError(f"{path}: cannot write ({error.strerror or error})") from None


def _save_npy(path: Path, array: np.ndarray) -> None:
    from ganinterface.atomic import atomic_write

    with atomic_write(path) as handle:
        np.save(handle, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)


def _for_each(jobs: list[Job], paths: list[Path], what: str, work) -> int:
    from ganinterface.export.progress import TqdmProgress

    with TqdmProgress(what, unit="image", total=len(jobs), disable=len(jobs) < 2) as progress:
        for done, (job, path) in enumerate(zip(jobs, paths), start=1):
            work(job, path)
            progress(done, len(jobs))
    return 0


def _render(args: argparse.Namespace) -> int:
    from ganinterface.export.images import save_png

    jobs = jobs_from_args(args)
    paths = output_paths(args.output, jobs)
    renderers = _Renderers(args)
    renderers.for_scene(jobs[0].scene)  # a bad checkpoint fails before the progress bar starts

    def work(job: Job, path: Path) -> None:
        result = _rendered(renderers.for_scene(job.scene), job)
        if path.suffix.lower() == ".npy":
            _write(path, lambda p: _save_npy(p, result.raw))
        else:
            _write(path, lambda p: save_png(p, result.image, job.scene))

    return _for_each(jobs, paths, "render", work)


def _features(args: argparse.Namespace) -> int:
    from ganinterface.engine.colormap import PALETTES, feature_grid_image
    from ganinterface.export.images import save_png

    if args.palette not in PALETTES:
        raise UserError(f"unknown palette {args.palette!r}; palettes: {', '.join(PALETTES)}")
    if args.columns is not None and args.columns < 1:
        raise UserError(f"--columns must be at least 1, got {args.columns}")
    jobs = jobs_from_args(args)
    paths = output_paths(args.output, jobs)
    renderers = _Renderers(args)
    renderers.for_scene(jobs[0].scene)

    def work(job: Job, path: Path) -> None:
        renderer = renderers.for_scene(job.scene)
        try:
            renderer.generator.layer_index(args.layer)
        except KeyError as error:
            raise UserError(error.args[0]) from None
        features = _rendered(renderer, job, [args.layer]).features[args.layer]
        if path.suffix.lower() == ".npy":
            _write(path, lambda p: _save_npy(p, features))
        else:
            grid = feature_grid_image(features, args.scale, args.palette, columns=args.columns)
            _write(path, lambda p: save_png(p, grid))

    return _for_each(jobs, paths, "features", work)
