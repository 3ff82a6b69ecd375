"""The ``ganinterface`` command: no arguments (or a checkpoint path) opens the window; a sub-command runs headless."""

from __future__ import annotations

import multiprocessing
import sys


def main(argv: list[str] | None = None) -> int:
    # In the PyInstaller bundle, worker processes (spawned, e.g. by train-demo) start as this very
    # program with multiprocessing's arguments; this runs them. Elsewhere it does nothing.
    multiprocessing.freeze_support()
    argv = sys.argv[1:] if argv is None else argv
    from ganinterface.cli import COMMANDS

    if argv and (argv[0] in COMMANDS or argv[0] in ("-h", "--help", "--version")):
        from ganinterface.cli import main as cli_main

        return cli_main(argv)
    from ganinterface.ui.app import main as gui_main

    return gui_main(argv)


if __name__ == "__main__":
    sys.exit(main())
