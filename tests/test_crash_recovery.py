"""Crash recovery for real: the window runs in a subprocess, makes a change, autosaves, and is
killed with SIGKILL; the next start restores the session and shows the same pixels."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox

from ganinterface.engine.renderer import Renderer
from ganinterface.export import userfiles
from ganinterface.models.loading import load_generator
from ganinterface.models.native import save_native
from ganinterface.ui.main_window import MainWindow
from tiny_models import tiny_stylegan2

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

CHANGED_SEED = 21
KEYFRAMES = (3, 8)

# The first process: ganinterface's own start (app.main) with a checkpoint on the command line.
# Once the model shows, the test's hand makes a change; the test's eyes save every frame the
# window shows of the changed scene.
FIRST_PROCESS = f"""
import sys
import numpy as np
from ganinterface.atomic import atomic_write
from ganinterface.engine import commands as cmd
from ganinterface.ui import app, main_window

checkpoint, shown = sys.argv[1], sys.argv[2]
show = main_window.MainWindow._on_rendered

def watched(self, request, outcome):
    show(self, request, outcome)
    if self.last_result is None:
        return
    if self.stack.scene.seed != {CHANGED_SEED}:
        self.stack.push(cmd.set_fields("Seed", seed={CHANGED_SEED}, truncation_psi=0.6))
        for keyframe in {KEYFRAMES!r}:
            self.animation_panel.add_keyframe(keyframe)
    elif request.scene == self.stack.scene:
        with atomic_write(shown) as handle:
            np.save(handle, self.last_result.image)

main_window.MainWindow._on_rendered = watched
sys.exit(app.main([checkpoint]))
"""


def _wait_for(paths: list[Path], process: subprocess.Popen, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not all(path.exists() for path in paths):
        if process.poll() is not None:
            raise AssertionError(f"the window exited early: {process.stdout.read()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"no autosave within {timeout_s} s")
        time.sleep(0.1)


def test_a_killed_window_is_restored_with_the_same_pixels(qtbot, tmp_path):
    checkpoint = tmp_path / "tiny.safetensors"
    save_native(tiny_stylegan2(seed=3), checkpoint)
    state, shown = tmp_path / "state", tmp_path / "shown.npy"
    environment = {**os.environ, "GANINTERFACE_STATE_DIR": str(state), "QT_QPA_PLATFORM": "offscreen",
                   "HOME": str(tmp_path / "home")}  # its settings, not the user's
    process = subprocess.Popen([sys.executable, "-c", FIRST_PROCESS, str(checkpoint), str(shown)],
                               env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    autosave = state / "session.json"
    try:
        _wait_for([autosave, shown], process)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        process.stdout.close()
    assert process.returncode == -signal.SIGKILL

    session = userfiles.read_session(autosave)
    assert session.scene.seed == CHANGED_SEED and session.keyframes == KEYFRAMES
    assert session.checkpoint == str(checkpoint)
    directly = Renderer(load_generator(checkpoint)).render(session.scene).image

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, force_sync=True)  # the next start
    window._ask.answer = QMessageBox.StandardButton.Yes
    try:
        assert window.restore_autosave()
        assert window.stack.scene == session.scene and window.isWindowModified()
        assert tuple(window.animation_panel.keyframes) == KEYFRAMES
        restored = window.last_result.image
    finally:
        window.shutdown()
    assert np.array_equal(restored, directly)
    assert np.array_equal(restored, np.load(shown))
