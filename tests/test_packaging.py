"""The package as users get it: its version, imported from a zip, built into a wheel and installed
into a fresh environment, and its icon and desktop files."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path



def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result


# ---- version -------------------------------------------------------------------------------------

def test_version_command_prints_the_installed_version(tmp_path):
    result = _run([sys.executable, "-m", "ganinterface", "--version"], cwd=tmp_path)
    assert result.stdout == f"ganinterface {importlib.metadata.version('ganinterface')}\n"
