"""The direction of dependencies (ui -> cli -> search -> demo -> export -> engine -> models) and Qt
kept in ui/."""

from pathlib import Path

import pytest

importlinter = pytest.importorskip("importlinter")


def test_import_contracts_hold():
    from importlinter.cli import lint_imports

    root = Path(__file__).resolve().parents[1]
    assert lint_imports(config_filename=str(root / "pyproject.toml")) == 0
