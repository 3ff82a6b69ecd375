"""The options several commands share, each defined once with one help text.

The checkpoint is the positional ``CKPT`` of every command that renders (after the command's own
inputs, such as ``apply-recipe RECIPE``); ``--checkpoint CKPT`` means the same, so both documented
spellings work everywhere.  Numbers are parsed by the argparse types below, which refuse what is not
finite; seed lists and output patterns are checked when the command runs, as one-line errors.
Nothing here imports torch, so ``ganinterface COMMAND --help`` stays quick.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganinterface.cli import UserError

if TYPE_CHECKING:
    import torch

    from ganinterface.engine.renderer import Renderer
    from ganinterface.engine.scene import Recipe, Scene
    from ganinterface.export.batch import Encoder, Executor, ExecutorFor, JobReport, Output, Task
    from ganinterface.models.base import GeneratorBase

CHECKPOINT_HELP = ("generator checkpoint: NVlabs .pkl, rosinality .pt or ganinterface .safetensors "
                   "(default: the built-in portrait model)")
DEVICE_HELP = "cpu, cuda, cuda:N or mps (default: the fastest present)"
SEEDS_EXAMPLE = "a list such as 0-7,12"
_TWO_NUMBERS = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


# ---- numbers ------------------------------------------------------------------------------------

def finite_float(text: str) -> float:
    """argparse type: a finite number (``nan`` and ``inf`` are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def image_size(text: str) -> tuple[int, int]:
    """argparse type: "256x128" -> (width 256, height 128)."""
    size = two_numbers(text)
    if size is None or min(size) < 1:
        raise argparse.ArgumentTypeError(f"size must look like 256x128 (width x height), got {text!r}")
    return size


def two_numbers(text: str) -> tuple[int, int] | None:
    """"128x64" -> (128, 64); None if ``text`` is not two whole numbers joined by an x."""
    match = _TWO_NUMBERS.match(text)
    return (int(match.group(1)), int(match.group(2))) if match else None


# ---- the checkpoint and the device ---------------------------------------------------------------

class _Checkpoint(argparse.Action):
    """Stores the checkpoint from ``CKPT`` or ``--checkpoint``; refuses it given twice."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 value: Any, option_string: str | None = None) -> None:
        if value is None:  # the positional, left out
            return
        if getattr(namespace, self.dest, None) is not None:
            parser.error("give the checkpoint once, as CKPT or as --checkpoint CKPT")
        setattr(namespace, self.dest, value)


def add_checkpoint(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", nargs="?", metavar="CKPT", action=_Checkpoint,
                        default=None, help=CHECKPOINT_HELP)
    parser.add_argument("--checkpoint", dest="checkpoint", metavar="CKPT", action=_Checkpoint,
                        default=None, help="the same as CKPT")


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default=None, help=DEVICE_HELP)


def chosen_device(args: argparse.Namespace) -> "torch.device":
    """The ``--device`` asked for (or the fastest present); a bad name is a one-line UserError."""
    from ganinterface.engine.device import DeviceError, pick_device

    try:
        return pick_device(args.device)
    except DeviceError as error:
        raise UserError(str(error)) from None


def renderer(args: argparse.Namespace) -> "Renderer":
    """A Renderer of the chosen checkpoint on the chosen device."""
    from ganinterface.engine.renderer import Renderer
    from ganinterface.models.loading import load_generator

    device = chosen_device(args)
    return Renderer(load_generator(args.checkpoint, device), device)


# ---- seeds and the latent ------------------------------------------------------------------------

def seeds_help(purpose: str, default: str | None = None) -> str:
    """The help of a seed-list option: what the seeds are for, the syntax, the default."""
    return f"{purpose}: {SEEDS_EXAMPLE}" + (f" (default: {default})" if default else "")


def seed_list(text: str, option: str = "--seeds") -> list[int]:
    """A seed list ("0-7,12"); a bad one is a one-line UserError naming the option."""
    from ganinterface.engine.latents import LatentError, parse_seeds

    try:
        return parse_seeds(text)
    except LatentError as error:
        raise UserError(f"{option}: {error}") from None


def add_truncation(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trunc", "--truncation-psi", dest="truncation_psi", type=finite_float,
                        default=None, metavar="PSI", help="truncation psi (default 1: none)")


def truncation_psi(args: argparse.Namespace) -> float:
    return 1.0 if args.truncation_psi is None else args.truncation_psi


def add_latent_options(parser: argparse.ArgumentParser) -> None:
    """How a seed becomes a latent: truncation, its cutoff, the class and the noise."""
    add_truncation(parser)
    parser.add_argument("--trunc-cutoff", "--truncation-cutoff", dest="truncation_cutoff", type=int,
                        default=None, metavar="N", help="truncate only the first N ws (default: all)")
    parser.add_argument("--class", dest="class_index", type=int, default=None, metavar="K",
                        help="class index, for conditional models")
    parser.add_argument("--noise-mode", choices=("const", "random", "none"), default=None,
                        help="const (default), random or none")


LATENT_FLAGS = {"--trunc": "truncation_psi", "--trunc-cutoff": "truncation_cutoff",
                "--class": "class_index", "--noise-mode": "noise_mode"}


def seed_scene(args: argparse.Namespace, seed: int = 0) -> "Scene":
    """The Scene of ``seed`` with the latent options (the checkpoint recorded as an absolute path)."""
    from ganinterface.engine.scene import Scene

    checkpoint = None if args.checkpoint is None else str(Path(args.checkpoint).resolve())
    return Scene(checkpoint=checkpoint, seed=seed, class_index=args.class_index,
                 truncation_psi=truncation_psi(args), truncation_cutoff=args.truncation_cutoff,
                 noise_mode=args.noise_mode or "const")


# ---- outputs -------------------------------------------------------------------------------------

def output_paths(pattern: str, items: Sequence[tuple[int, str]],
                 suffixes: Sequence[str] = (".png",)) -> list[Path]:
    """One output file per (seed, name) from ``pattern`` ({seed}, {index}, {name}); refuses unknown
    placeholders, names that clash and file types not in ``suffixes``."""
    try:
        paths = [Path(pattern.format(seed=seed, index=index, name=name))
                 for index, (seed, name) in enumerate(items)]
    except (KeyError, IndexError, ValueError) as error:
        raise UserError(f"output pattern {pattern!r} is not usable ({error!s}); placeholders are "
                        "{seed}, {index} and {name}") from None
    if len(set(paths)) < len(paths):
        raise UserError(f"output pattern {pattern!r} gives several images the same file; put "
                        "{seed} (or {index}) in it, e.g. out/seed{seed}.png")
    if any(path.suffix.lower() not in suffixes for path in paths):
        raise UserError(f"output {pattern!r} must end in {' or '.join(suffixes)}")
    return paths


# ---- batch jobs: where they run ------------------------------------------------------------------

def add_batch_options(parser: argparse.ArgumentParser) -> None:
    """Where a job over many images runs, in what batches, and resuming it."""
    group = add_where_options(parser, "many images")
    group.add_argument("--batch-size", type=_batch_size, default=None, metavar="N",
                       help="images rendered in one pass: auto (by image size) or N; on the CPU "
                            "the window's pixels whatever the size, on a GPU above 1 is faster "
                            "but can differ from a single render by rounding (default: auto on "
                            "the CPU, 1 on a GPU)")
    add_skip_existing(group)


def add_skip_existing(group: "argparse._ArgumentGroup") -> None:
    group.add_argument("--skip-existing", action="store_true",
                       help="leave outputs that already exist alone (resumes an interrupted run)")


def add_where_options(parser: argparse.ArgumentParser,
                      title: str) -> "argparse._ArgumentGroup":
    """--workers or --ray: where a batch job's chunks run; returns their group."""
    group = parser.add_argument_group(title)
    where = group.add_mutually_exclusive_group()
    where.add_argument("--workers", type=positive_int, default=None, metavar="N",
                       help="render in N local processes, each holding the model once (1: this "
                            "process; default on the CPU: one per core for long jobs, else this "
                            "process with a render thread per core)")
    where.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                       help="render on a Ray cluster: its ADDRESS, auto (the cluster this machine "
                            "is in), or nothing (start one here); needs "
                            "pip install \"ganinterface[cluster]\"")
    return group


def start_workers_early(args: argparse.Namespace) -> None:
    """For a command with ``add_where_options`` that may run local worker processes: start their
    fork server before this process imports torch (``export.batch.start_worker_server``)."""
    if not hasattr(args, "workers") or args.workers == 1 or args.ray is not None:
        return
    if getattr(args, "device", None) not in (None, "auto", "cpu"):
        return  # a GPU job runs in this process
    from ganinterface.export import batch

    batch.start_worker_server()


def _batch_size(text: str) -> int | str:
    return "auto" if text == "auto" else positive_int(text)


def run_batch(args: argparse.Namespace, generator: "GeneratorBase", device: "torch.device",
              scenes: "Sequence[Scene]", paths: Sequence[Path], encoder: "Encoder", what: str,
              names: Sequence[str] | None = None) -> "JobReport":
    """``scenes`` rendered into ``paths`` as ``encoder`` writes them, in the batches ``args`` ask
    for (``run_task``)."""
    from ganinterface.export import batch

    size = args.batch_size
    if size is None:
        size = batch.default_batch_size(generator.img_width, generator.img_height, device)
    elif size == "auto":
        size = batch.auto_batch_size(generator.img_width, generator.img_height)
    def describe(indices: Sequence[int]) -> str:
        if names is not None:
            return ", ".join(names[i] for i in indices)
        return batch.seeds_text([scenes[i].seed for i in indices])

    return run_task(args, generator, device, scenes, paths, batch.Work(encoder, size), what,
                    describe)


def run_task(args: argparse.Namespace, generator: "GeneratorBase", device: "torch.device",
             items: Sequence[Any], paths: "Sequence[Output]", task: "Task", what: str,
             describe: "Callable[[Sequence[int]], str]", noun: str = "images") -> "JobReport":
    """``export.batch.run_job`` where ``args`` say, with a progress bar (images/s, time left);
    items that failed are one error naming them (``describe(indices)``), after the rest were
    written.  ``paths[i]`` is the file, or the files, of ``items[i]``; ``noun`` names the items."""
    from ganinterface.export import batch
    from ganinterface.export.progress import TqdmProgress

    with TqdmProgress(what, unit=noun.rstrip("s"), disable=args.quiet or len(items) < 2) as progress:
        report = batch.run_job(executor(args, generator, device, task, len(items)), items,
                               paths, task, skip_existing=args.skip_existing, progress=progress)
    if report.failures:
        lines = [f"{describe(failure.indices)}: {failure.error}"
                 for failure in report.failures]
        count = sum(len(failure.indices) for failure in report.failures)
        written = set(report.written)
        whole = sum(all(path in written for path in _files(item_paths)) for item_paths in paths)
        raise UserError(f"{count} of {len(items)} {noun} failed ({whole} written): "
                        + "; ".join(lines))
    return report


def _files(output: "Output") -> tuple[Path, ...]:
    return output if isinstance(output, tuple) else (output,)


def executor(args: argparse.Namespace, generator: "GeneratorBase", device: "torch.device",
             task: "Task", images: int) -> "Executor":
    """Where ``args`` (``add_where_options``) say ``task`` runs, for a job of ``images`` items."""
    from ganinterface.export import batch

    if args.ray is None:
        return batch.local_executor(generator, device, task, args.workers, images)
    from ganinterface.export.ray_executor import RayCluster

    try:
        return RayCluster(args.ray, generator, task)
    except ImportError as error:
        raise UserError(f"--ray: {error}") from None
    except ConnectionError as error:
        raise UserError(f"--ray {args.ray}: cannot reach the cluster ({error})") from None


def executor_for(args: argparse.Namespace, generator: "GeneratorBase",
                 device: "torch.device") -> "ExecutorFor":
    """``executor`` for each job a command runs: (task, items) -> where it runs."""
    return lambda task, items: executor(args, generator, device, task, items)


# ---- what was written ----------------------------------------------------------------------------

FEW_FILES = 4  # up to this many files are listed one a line; more are summed up in one line


def add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="print nothing but errors (no list of the files written, no progress bar)")


def report(args: argparse.Namespace, lines: Sequence[str]) -> None:
    """Say on stdout what the command did, unless ``--quiet``."""
    if not args.quiet:
        for line in lines:
            print(line)


def written_lines(paths: Sequence[Path], noun: str) -> list[str]:
    """What was written where: a line per file for a few files, else one line such as
    "wrote 200 images to out/ (seed0.png … seed199.png)"."""
    if len(paths) <= FEW_FILES:
        return [f"wrote {path}" for path in paths]
    folders = {path.parent for path in paths}
    if len(folders) == 1:
        where, names = f"to {os.path.join(folders.pop(), '')}", [paths[0].name, paths[-1].name]
    else:
        root = Path(os.path.commonpath(paths))
        where = f"under {os.path.join(root, '')}"
        names = [str(paths[0].relative_to(root)), str(paths[-1].relative_to(root))]
    return [f"wrote {len(paths)} {noun} {where} ({names[0]} … {names[1]})"]


def animation_lines(path: Path, fmt: str, frames: int, fps: float) -> list[str]:
    """What an animation written as ``fmt`` (see ``export.animation.FORMATS``) is and where."""
    if fmt == "png-seq":
        return written_lines(sorted(path.glob("frame_*.png")), "frames")
    if fmt == "strip":
        return [f"wrote {path} ({frames} frames in one image)"]
    return [f"wrote {path} ({frames} frames at {fps:g} fps)"]


# ---- recipes ----------------------------------------------------------------------------------------

def recipe_path(text: str) -> str:
    """A recipe file, or the name of one shipped with the built-in model ("open-mouth"), so the
    shipped recipes work from any install, not only from a checkout's checkpoints/recipes/."""
    from ganinterface import bundled

    if Path(text).exists() or Path(text).suffix:
        return text
    shipped = {path.stem: path for path in bundled.shipped_recipes()}
    return str(shipped[text]) if text in shipped else text


def add_keep_rest_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keep-rest", action=argparse.BooleanOptionalAction, default=None,
                        help="let recipes change only the picture inside their regions (or, with "
                             "--no-keep-rest, everywhere they reach); default: as each recipe says")


def rest_as_asked(args: argparse.Namespace, recipe: "Recipe") -> "Recipe":
    """``recipe`` keeping the rest of the picture or not as ``--keep-rest`` says (unchanged without)."""
    return recipe if args.keep_rest is None else recipe.keeping_rest(args.keep_rest)


def recipe_help(purpose: str) -> str:
    from ganinterface import bundled

    names = ", ".join(path.stem for path in bundled.shipped_recipes())
    return f"{purpose}: a recipe file, or a built-in recipe by name ({names})"
