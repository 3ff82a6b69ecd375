"""``ganinterface apply-recipe`` and ``ganinterface animate``: edits and animations from the shell.

Both render through the same ``Renderer`` as the window, so a frame or image here has the pixels the
window would show for the same Scene.  Every file is written atomically; Ctrl-C leaves no partial
file (finished images of a batch stay, each complete).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ganinterface.cli import UserError, chosen_device, seed_list

if TYPE_CHECKING:
    import numpy as np

    from ganinterface.engine.renderer import Renderer
    from ganinterface.engine.scene import Recipe, Scene

_SIZE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")
_SEED_NEEDS_RECIPE = ("--seed animates a recipe's strength: add --recipe R.json "
                      "(or use --seeds to blend between seeds)")


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_apply_recipe(subparsers)
    _register_animate(subparsers)


# ---- shared options ---------------------------------------------------------------------------------

def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", metavar="CKPT", default=None,
                        help="generator checkpoint (NVlabs .pkl, rosinality .pt, ganinterface "
                             ".safetensors); default: the built-in portrait model")
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: the fastest present)")
    parser.add_argument("--trunc", "--truncation-psi", dest="truncation_psi", type=float, default=1.0,
                        metavar="PSI", help="truncation psi (default 1: none)")
    parser.add_argument("--trunc-cutoff", "--truncation-cutoff", dest="truncation_cutoff", type=int,
                        default=None, metavar="N", help="truncate only the first N ws (default: all)")
    parser.add_argument("--class", dest="class_index", type=int, default=None, metavar="C",
                        help="class index, for conditional models")
    parser.add_argument("--noise-mode", choices=("const", "random", "none"), default="const")
    parser.add_argument("--force", action="store_true",
                        help="apply a recipe even if it was made for a different model")


def image_size(text: str) -> tuple[int, int]:
    match = _SIZE.match(text)
    if not match or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise argparse.ArgumentTypeError(f"size must look like 256x128 (width x height), got {text!r}")
    return int(match.group(1)), int(match.group(2))


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _renderer(args: argparse.Namespace) -> "Renderer":
    from ganinterface.engine.renderer import Renderer
    from ganinterface.models.loading import load_generator

    device = chosen_device(args.device)
    return Renderer(load_generator(args.checkpoint, device), device)


def _base_scene(args: argparse.Namespace, seed: int) -> "Scene":
    from ganinterface.engine.scene import Scene

    checkpoint = None if args.checkpoint is None else str(Path(args.checkpoint).resolve())
    return Scene(checkpoint=checkpoint, seed=seed, class_index=args.class_index,
                 truncation_psi=args.truncation_psi, truncation_cutoff=args.truncation_cutoff,
                 noise_mode=args.noise_mode)


def read_recipe(path: str) -> "Recipe":
    """Read and check a recipe file (before any model is loaded, so a typo fails fast)."""
    from ganinterface.engine.scene import Recipe, SceneFormatError

    try:
        return Recipe.from_json(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such recipe file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: cannot read the recipe ({error})") from None
    except SceneFormatError as error:
        raise UserError(f"{path}: {error}") from None


def check_recipe_model(recipe: "Recipe", path: str, renderer: "Renderer", force: bool) -> None:
    """Refuse a recipe made for another model (its ``model_hash``) unless ``force``."""
    if not recipe.model_hash or force:
        return
    from ganinterface.models.native import generator_hash

    model_hash = generator_hash(renderer.generator)
    if model_hash != recipe.model_hash:
        raise UserError(f"{path}: this recipe was made for model {recipe.model_hash[:12]}, not for "
                        f"this checkpoint ({model_hash[:12]}); pass --force to apply it anyway")


def _render_image(renderer: "Renderer", scene: "Scene") -> "np.ndarray":
    result = renderer.render(scene)
    if result.error is not None or result.image is None:
        raise UserError(f"seed {scene.seed}: {result.error}")
    return result.image


# ---- apply-recipe -----------------------------------------------------------------------------------

def _register_apply_recipe(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "apply-recipe", help="apply a saved edit recipe to many seeds",
        description="Render each seed with the recipe's edits applied and save one PNG per seed "
                    "(each PNG carries its Scene, so it can be reopened in the window).")
    parser.add_argument("recipe", metavar="RECIPE.json")
    parser.add_argument("--seeds", required=True, help="seeds, e.g. 0-199 or 1,5,10-20")
    parser.add_argument("--strength", type=float, default=1.0,
                        help="multiply every edit amount by this (default 1)")
    parser.add_argument("-o", "--output", required=True, metavar="PATTERN",
                        help="output path with {seed} (or {index}), e.g. out/{seed}.png or "
                             "out/{seed:04d}.png")
    parser.add_argument("--scale", type=positive_int, default=1,
                        help="enlarge the saved images this many times (nearest neighbour)")
    _add_model_options(parser)
    parser.set_defaults(handler=_apply_recipe)


def recipe_outputs(pattern: str, seeds: Sequence[int]) -> list[Path]:
    """One PNG per seed from a pattern like ``out/{seed}.png`` (the ``render`` command's rules)."""
    from ganinterface.cli.render_cmd import Job, output_paths
    from ganinterface.engine.scene import Scene

    paths = output_paths(pattern, [Job(Scene(seed=seed), f"seed{seed}") for seed in seeds])
    if any(path.suffix.lower() != ".png" for path in paths):
        raise UserError(f"output {pattern!r} must end in .png (the images carry their scenes)")
    return paths


def _apply_recipe(args: argparse.Namespace) -> int:
    from ganinterface.export.images import save_png
    from ganinterface.export.progress import TqdmProgress

    seeds = seed_list(args.seeds)
    paths = recipe_outputs(args.output, seeds)
    recipe = read_recipe(args.recipe)
    renderer = _renderer(args)
    check_recipe_model(recipe, args.recipe, renderer, args.force)
    recipe = recipe.scaled(args.strength)
    with TqdmProgress("apply-recipe", unit="image", total=len(seeds)) as progress:
        for done, (seed, path) in enumerate(zip(seeds, paths), start=1):
            scene = recipe.applied_to(_base_scene(args, seed))
            image = _render_image(renderer, scene)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                save_png(path, image, scene, scale=args.scale)
            except OSError as error:
                raise UserError(f"{path}: cannot write ({error.strerror or error})") from None
            progress(done, len(seeds))
    return 0


# ---- animate ----------------------------------------------------------------------------------------

def _register_animate(subparsers: argparse._SubParsersAction) -> None:
    from ganinterface.engine.animation import CURVES, EASINGS
    from ganinterface.export.animation import FORMATS

    parser = subparsers.add_parser(
        "animate", help="interpolate between seeds, or animate a recipe's strength",
        description="Either blend between keyframe seeds (--seeds), or play a recipe on one seed "
                    "with its strength following a curve (--seed with --recipe; --curve talk opens "
                    "and closes a mouth). Writes a GIF, an MP4 (H.264), a PNG sequence (a directory) "
                    "or a strip PNG, chosen by the output's extension.")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--seeds", help="keyframe seeds to blend between, e.g. 0,5,9")
    what.add_argument("--seed", type=int, help="the seed a recipe's strength is animated on")
    parser.add_argument("--space", choices=("w", "z"), default="w",
                        help="blend in W (linear, default) or in Z (spherical)")
    parser.add_argument("--loop", action="store_true", help="blend back to the first seed at the end")
    parser.add_argument("--easing", choices=EASINGS, default="linear",
                        help="pace within each blend (ease: slow at the keyframes)")
    parser.add_argument("--recipe", metavar="R.json",
                        help="with --seed: the recipe to animate; with --seeds: applied to every frame")
    parser.add_argument("--curve", choices=CURVES, default="talk",
                        help="how the recipe's strength moves (default talk: a sine loop)")
    parser.add_argument("--cycles", type=positive_float, default=1.0,
                        help="repetitions of a ping-pong or talk curve (default 1)")
    parser.add_argument("--strength", type=float, default=1.0,
                        help="the recipe's strength at the curve's top (default 1)")
    parser.add_argument("--strength-from", type=float, default=0.0,
                        help="the recipe's strength at the curve's bottom (default 0)")
    parser.add_argument("--frames", type=positive_int, default=48, help="number of frames (default 48)")
    parser.add_argument("--fps", type=positive_float, default=24.0, help="frames per second (default 24)")
    parser.add_argument("-o", "--output", required=True,
                        help="out.gif, out.mp4, out_dir/ (PNG sequence) or strip.png")
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="override the format the output's extension implies")
    parser.add_argument("--size", type=image_size, default=None, metavar="WxH",
                        help="resize frames, e.g. 256x128")
    parser.add_argument("--resample", choices=("lanczos", "nearest"), default="lanczos",
                        help="how --size resizes (nearest keeps pixels sharp)")
    parser.add_argument("--columns", type=positive_int, default=None,
                        help="strip: frames per row (default: all in one row)")
    _add_model_options(parser)
    parser.set_defaults(handler=_animate)


def animation_scenes(args: argparse.Namespace, renderer: "Renderer",
                     recipe: "Recipe | None") -> "list[Scene]":
    """The Scenes to render, one per frame, from the command's arguments."""
    from ganinterface.engine import animation

    if args.seeds is not None:
        seeds = seed_list(args.seeds)
        base = _base_scene(args, seeds[0])
        if recipe is not None:
            base = recipe.scaled(args.strength).applied_to(base)
        if args.space == "w":
            return animation.interpolate_w(base, seeds, args.frames, renderer.base_ws,
                                           loop=args.loop, easing=args.easing)
        return animation.interpolate_z(base, seeds, args.frames, renderer.generator.z_dim,
                                       animation.z_mapper(renderer, base), loop=args.loop,
                                       easing=args.easing)
    if recipe is None:
        raise UserError(_SEED_NEEDS_RECIPE)
    return animation.recipe_strength(_base_scene(args, args.seed), recipe, args.frames, args.curve,
                                     cycles=args.cycles, low=args.strength_from, high=args.strength)


def _check_animate_request(args: argparse.Namespace) -> str:
    """Everything that can be checked without the model; returns the output format."""
    from ganinterface.export.animation import format_for_path

    try:
        fmt = args.format or format_for_path(args.output)
    except ValueError as error:
        raise UserError(str(error)) from None
    if fmt == "gif" and args.fps > 50:
        raise UserError(f"GIFs cannot play faster than 50 fps in most viewers (got --fps {args.fps:g}); "
                        "write an MP4 instead")
    if args.seeds is not None and len(seed_list(args.seeds)) < 2:
        raise UserError(f"--seeds needs at least two keyframes to blend, got {args.seeds!r}; "
                        "use --seed with --recipe to animate one seed")
    if args.seed is not None and not args.recipe:
        raise UserError(_SEED_NEEDS_RECIPE)
    return fmt


def _animate(args: argparse.Namespace) -> int:
    from ganinterface.engine.animation import AnimationError
    from ganinterface.export.animation import export_frames
    from ganinterface.export.progress import TqdmProgress

    fmt = _check_animate_request(args)
    recipe = read_recipe(args.recipe) if args.recipe else None
    renderer = _renderer(args)
    if recipe is not None:
        check_recipe_model(recipe, args.recipe, renderer, args.force)
    try:
        scenes = animation_scenes(args, renderer, recipe)
    except AnimationError as error:
        raise UserError(str(error)) from None
    output = Path(args.output)
    with TqdmProgress("animate", unit="frame", total=len(scenes)) as progress:
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            export_frames(lambda index: _render_image(renderer, scenes[index]), output, fmt,
                          count=len(scenes), fps=args.fps, size=args.size, resample=args.resample,
                          columns=args.columns, progress=progress)
        except OSError as error:
            raise UserError(f"{output}: cannot write ({error.strerror or error})") from None
    return 0
