"""Headless command line over the same engine the window uses.

Each sub-command lives in its own module of this package and exposes ``register(subparsers)``,
which adds its parser (with the shared options of ``cli.options``) and sets ``handler`` (a function
``args -> int``) as a default.  Errors the user can fix (a ``UserError``, or a bad checkpoint, user
file or render) end as one line on stderr and exit code 1 — never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# sub-command name -> module in this package that registers it
COMMANDS: dict[str, str] = {
    "info": "models_cmd",
    "convert": "models_cmd",
    "render": "render_cmd",
    "features": "render_cmd",
    "export": "export_cmd",
    "apply-recipe": "edits_cmd",
    "animate": "edits_cmd",
    "directions": "directions_cmd",
    "demo-dataset": "demo_cmd",
    "train-classifier": "demo_cmd",
    "train-demo": "train_cmd",
    "train-encoder": "train_cmd",
    "demo-eval": "eval_cmd",
    "demo-edits": "eval_cmd",
    "demo-directions": "eval_cmd",
    "project": "project_cmd",
    "sample-latents": "project_cmd",
}


class UserError(Exception):
    """Something the user can fix; printed as one line without a traceback."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; given the ``command`` being run, only that command's module is imported
    (some pull in torch), so start-up stays quick."""
    from ganinterface import __version__

    parser = argparse.ArgumentParser(
        prog="ganinterface",
        description="Look inside StyleGAN-family generators and edit what they make. "
                    "With no command, opens the window.")
    parser.add_argument("--version", action="version", version=f"ganinterface {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = ([COMMANDS[command]] if command in COMMANDS
               else [] if command == "--version"  # needs no command module (several import torch)
               else COMMANDS.values())
    for module_name in dict.fromkeys(modules):
        try:
            module = importlib.import_module(f"ganinterface.cli.{module_name}")
        except ModuleNotFoundError as error:
            if error.name != f"ganinterface.cli.{module_name}":
                raise
            continue  # a command module not written yet
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    from ganinterface.cli import options

    options.start_workers_early(args)
    from ganinterface.engine.renderer import RenderError
    from ganinterface.export.userfiles import UserFileError
    from ganinterface.models.base import CheckpointError

    try:
        return int(args.handler(args) or 0)
    except (UserError, CheckpointError, UserFileError, RenderError) as error:
        print(f"ganinterface {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"ganinterface {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `ganinterface info x.pkl | head`: the reader has gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
