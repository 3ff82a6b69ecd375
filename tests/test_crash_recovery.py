"""Crash recovery for real: the window runs in a subprocess, makes a change, autosaves, and is
killed with SIGKILL; the next start restores the session and shows the same pixels."""

from __future__ import annotations

import os
import random
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
from ganinterface.ui import documents
from ganinterface.ui.main_window import MainWindow
from crash_report import write_section
from tiny_models import tiny_stylegan2

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

CHANGED_SEED = 21
KEYFRAMES = (3, 8)
CHANGE_EVERY_MS = 100
MAX_WAIT_S = 1.0  # the autosave's longest wait while changes keep coming, shortened for the test

# The window: ganinterface's own start (app.main) with a checkpoint on the command line.  Once the
# model shows, the test's hand makes a change (``once``: one, with keyframes; ``keep-changing``: the
# seed goes up every CHANGE_EVERY_MS, as in a long drag, and the last seed set is written down;
# the autosave waits at most MAX_WAIT_S);
# the test's eyes save the frame the window shows of the changed scene.
WINDOW_PROCESS = f"""
import sys
import numpy as np
from PySide6.QtCore import QTimer
from ganinterface.atomic import atomic_write, atomic_write_text
from ganinterface.engine import commands as cmd
from ganinterface.ui import app, documents, main_window

checkpoint, mode, notes = sys.argv[1], sys.argv[2], sys.argv[3]
documents.AUTOSAVE_MAX_WAIT_S = {MAX_WAIT_S}
show = main_window.MainWindow._on_rendered

def keep_changing(window):
    seed = window.stack.scene.seed + 1  # written down first: the push may autosave at once
    atomic_write_text(notes + "/pushed.txt", str(seed), durable=False)
    window.stack.push(cmd.set_fields("Seed", seed=seed, merge_key="drag"))

def watched(self, request, outcome):
    show(self, request, outcome)
    if self.last_result is None:
        return
    if self.stack.scene.seed == 0:
        self.stack.push(cmd.set_fields("Seed", seed={CHANGED_SEED}, truncation_psi=0.6))
        if mode == "once":
            for keyframe in {KEYFRAMES!r}:
                self.animation_panel.add_keyframe(keyframe)
        else:
            self.drag = QTimer(self, interval={CHANGE_EVERY_MS})
            self.drag.timeout.connect(lambda: keep_changing(self))
            self.drag.start()
    elif mode == "once" and request.scene == self.stack.scene:
        with atomic_write(notes + "/shown.npy") as handle:
            np.save(handle, self.last_result.image)

main_window.MainWindow._on_rendered = watched
sys.exit(app.main([checkpoint]))
"""


def _start_window(tmp_path: Path, checkpoint: Path, mode: str) -> subprocess.Popen:
    environment = {**os.environ, "GANINTERFACE_STATE_DIR": str(tmp_path / "state"),
                   "QT_QPA_PLATFORM": "offscreen",
                   "HOME": str(tmp_path / "home")}  # its settings, not the user's
    return subprocess.Popen([sys.executable, "-c", WINDOW_PROCESS, str(checkpoint), mode,
                             str(tmp_path)], env=environment, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    process.stdout.close()
    assert process.returncode == -signal.SIGKILL


def _restore(tmp_path: Path) -> np.ndarray:
    """The next start, answering Yes to the restore question: the image the window shows."""
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, force_sync=True)
    window._ask.answer = QMessageBox.StandardButton.Yes
    try:
        assert window.restore_autosave()
        assert window.isWindowModified()
        return window.stack.scene, tuple(window.animation_panel.keyframes), window.last_result.image
    finally:
        window.shutdown()


def _wait_for(paths: list[Path], process: subprocess.Popen, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not all(path.exists() for path in paths):
        if process.poll() is not None:
            raise AssertionError(f"the window exited early: {process.stdout.read()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"no {[p.name for p in paths]} within {timeout_s} s")
        time.sleep(0.1)


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    path = tmp_path / "tiny.safetensors"
    save_native(tiny_stylegan2(seed=3), path)
    return path


@pytest.mark.slow  # starts and kills a real window process twice
def test_a_killed_window_is_restored_with_the_same_pixels(qtbot, tmp_path, checkpoint):
    process = _start_window(tmp_path, checkpoint, "once")
    autosave, shown = tmp_path / "state" / "session.json", tmp_path / "shown.npy"
    try:
        _wait_for([autosave, shown], process)
    finally:
        _kill(process)
    session = userfiles.read_session(autosave)
    assert session.scene.seed == CHANGED_SEED and session.keyframes == KEYFRAMES
    assert session.checkpoint == str(checkpoint)
    directly = Renderer(load_generator(checkpoint)).render(session.scene).image

    scene, keyframes, restored = _restore(tmp_path)
    assert scene == session.scene and keyframes == KEYFRAMES
    assert np.array_equal(restored, directly)
    assert np.array_equal(restored, np.load(shown))


KILLS = 3
KILL_SEED = 2026


@pytest.mark.slow
def test_a_window_killed_in_the_middle_of_a_drag_restores_a_recent_state(qtbot, tmp_path, checkpoint):
    """Killed at random moments while the scene keeps changing (the autosave may be being written):
    the autosave is always readable, restores to its own pixels, and little work is lost."""
    rng = random.Random(KILL_SEED)
    renderer = Renderer(load_generator(checkpoint))
    lost = []
    for _ in range(KILLS):
        process = _start_window(tmp_path, checkpoint, "keep-changing")
        try:
            _wait_for([tmp_path / "pushed.txt"], process)
            time.sleep(rng.uniform(MAX_WAIT_S + 0.5, 3 * MAX_WAIT_S + 0.5))
        finally:
            _kill(process)
        pushed = int((tmp_path / "pushed.txt").read_text())
        scene, _, restored = _restore(tmp_path)
        assert CHANGED_SEED <= scene.seed <= pushed
        assert np.array_equal(restored, renderer.render(scene).image)
        lost.append((pushed - scene.seed) * CHANGE_EVERY_MS / 1000)
        for used in (tmp_path / "pushed.txt", tmp_path / "state" / "session.json"):
            used.unlink()  # else the next window would ask to restore it
    assert max(lost) <= MAX_WAIT_S + 1.0  # the wait, plus a slow event loop on a busy machine
    write_section("Killed window", "\n".join([
        "Measured by `tests/test_crash_recovery.py`: the window runs in a subprocess and is SIGKILLed.",
        "",
        "- after one change and its autosave: restored on the next start, its image equal to a "
        "direct render of the autosaved scene and to the image the killed window showed;",
        f"- in the middle of a drag (the seed changing every {CHANGE_EVERY_MS} ms), {KILLS} kills at "
        f"random moments (seed {KILL_SEED}): {KILLS} of {KILLS} restored, each with the pixels of a "
        f"direct render; work lost: {', '.join(f'{s:.1f}' for s in lost)} s. The autosave waits "
        f"for {documents.AUTOSAVE_DELAY_MS / 1000:g} s of quiet, or at most "
        f"{documents.AUTOSAVE_MAX_WAIT_S:g} s while changes keep coming (shortened to "
        f"{MAX_WAIT_S:g} s in this test): that is what a kill can lose.",
    ]))
