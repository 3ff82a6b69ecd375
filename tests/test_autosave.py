"""The window's autosaved session: its file format, the autosave itself, restoring it at start, and
a clean exit removing it.  The killed-process round trip is in test_crash_recovery.py."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PySide6.QtWidgets import QMessageBox

from ganinterface.engine import commands as cmd
from ganinterface.engine.scene import Scene, encode_array
from ganinterface.export import userfiles
from ganinterface.export.userfiles import Session, UserFileError
from ganinterface.ui import documents
from ui_support import open_window

YES = QMessageBox.StandardButton.Yes


# ---- the file, without a window ---------------------------------------------------------------------

def test_session_round_trips_scene_keyframes_and_files(tmp_path):
    latent = np.arange(6, dtype=np.float32).reshape(2, 3)
    session = Session(Scene(seed=7, truncation_psi=0.5), (3, latent), "/x/scene.json", "/m/g.pkl")
    userfiles.write_session(tmp_path / "s.json", session)
    back = userfiles.read_session(tmp_path / "s.json")
    assert back.scene == session.scene
    assert back.keyframes[0] == 3 and np.array_equal(back.keyframes[1], latent)
    assert (back.scene_path, back.checkpoint) == ("/x/scene.json", "/m/g.pkl")


def test_a_latent_keyframe_keeps_its_detail_maps_and_a_flat_one_is_named(tmp_path):
    from ganinterface.engine.animation import LatentKeyframe

    detail = {"b8.conv0": np.full((2, 3, 4), 0.5, np.float32)}
    keyframe = LatentKeyframe(np.arange(6, dtype=np.float32).reshape(2, 3), detail)
    userfiles.write_session(tmp_path / "s.json", Session(Scene(), (keyframe, 4)))
    back, seed = userfiles.read_session(tmp_path / "s.json").keyframes
    assert seed == 4 and np.array_equal(back.w, keyframe.w)
    assert list(back.detail) == ["b8.conv0"] and np.array_equal(back.detail["b8.conv0"], detail["b8.conv0"])
    data = json.loads((tmp_path / "s.json").read_text())
    data["keyframes"][0]["detail_maps"]["b8.conv0"] = data["keyframes"][0]["latent"]  # 2-D
    (tmp_path / "s.json").write_text(json.dumps(data))
    with pytest.raises(UserFileError, match=r"session.keyframes\[0\].detail_maps\['b8.conv0'\] should hold"):
        userfiles.read_session(tmp_path / "s.json")


@pytest.mark.parametrize("text, problem", [
    ("{", "not valid JSON"),
    ('{"format": "ganinterface.scene", "version": 1}',
     "not a ganinterface.session file (format field is 'ganinterface.scene')"),
    ('[1, 2]', "not a ganinterface.session file (format field is None)"),
    ('{"format": "ganinterface.session", "version": 9}', "unsupported ganinterface.session version 9"),
    ('{"format": "ganinterface.session", "version": 1, "scene": {}}',
     "session keys checkpoint, keyframes, scene_path missing or unknown"),
])
def test_a_wrong_session_file_is_one_line_naming_it(tmp_path, text, problem):
    path = tmp_path / "session.json"
    path.write_text(text)
    with pytest.raises(UserFileError) as error:
        userfiles.read_session(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and problem in message and "\n" not in message


def test_a_wrong_keyframe_is_named(tmp_path):
    data = json.loads(userfiles.session_to_json(Session(Scene(), (1,))))
    data["keyframes"] = [{"seed": 1}, {"seed": "two"}]
    path = tmp_path / "session.json"
    path.write_text(json.dumps(data))
    with pytest.raises(UserFileError, match=r"session.keyframes\[1\].seed should be an integer"):
        userfiles.read_session(path)


def test_state_dir_follows_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(documents.STATE_DIR_VARIABLE, str(tmp_path / "elsewhere"))
    assert documents.state_dir() == tmp_path / "elsewhere"


# ---- the window -------------------------------------------------------------------------------------

def _autosave_path(tmp_path):
    return tmp_path / "state" / "session.json"  # conftest points the state folder there


def test_a_change_is_autosaved_shortly_after(qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(documents, "AUTOSAVE_DELAY_MS", 300)  # the wait itself, shortened
    with open_window(qtbot, tmp_path) as window:
        assert not _autosave_path(tmp_path).exists()  # nothing to lose yet
        window.stack.push(cmd.set_fields("Seed", seed=11))
        window.animation_panel.add_keyframe(4)
        assert not _autosave_path(tmp_path).exists()  # debounced, not at once
        qtbot.waitUntil(_autosave_path(tmp_path).exists, timeout=documents.AUTOSAVE_DELAY_MS + 3000)
        session = userfiles.read_session(_autosave_path(tmp_path))
        assert session.scene == window.stack.scene and session.keyframes == (4,)
        assert session.checkpoint is None and session.scene_path is None


def test_saving_the_document_leaves_nothing_to_restore(qtbot, tmp_path):
    with open_window(qtbot, tmp_path) as window:
        window.stack.push(cmd.set_fields("Seed", seed=11))
        window.autosave.save_now()
        assert _autosave_path(tmp_path).exists()
        assert window.documents.write_scene(tmp_path / "saved.json")
        window.autosave.save_now()
        assert not _autosave_path(tmp_path).exists()


def test_a_clean_exit_removes_the_autosave(qtbot, tmp_path):
    with open_window(qtbot, tmp_path) as window:
        window.stack.push(cmd.set_fields("Seed", seed=11))
        window.autosave.save_now()
        assert _autosave_path(tmp_path).exists()
        assert window.close()  # the save question is answered Discard
        assert not _autosave_path(tmp_path).exists()


def _window_restoring(qtbot, tmp_path, session: Session, answer):
    _autosave_path(tmp_path).parent.mkdir(parents=True, exist_ok=True)
    userfiles.write_session(_autosave_path(tmp_path), session)
    from PySide6.QtCore import QSettings

    from ganinterface.ui.main_window import MainWindow
    from ui_support import tiny_loader

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(loader=tiny_loader, settings=settings, force_sync=True)
    window._ask.answer = answer
    return window, window.restore_autosave()


def test_restoring_takes_up_scene_keyframes_and_file_unsaved(qtbot, tmp_path):
    latent = np.full((512,), 0.25, dtype=np.float32)
    scene = Scene(seed=5, truncation_psi=0.6)
    session = Session(scene, (2, latent), str(tmp_path / "mine.json"), None)
    window, restored = _window_restoring(qtbot, tmp_path, session, YES)
    try:
        assert restored and window.model is not None  # the session's model was loaded
        assert window.stack.scene == scene
        assert window.documents.opened == tmp_path / "mine.json"
        assert window.isWindowModified() and window.windowTitle().startswith("mine.json[*]")
        keyframes = window.animation_panel.keyframes
        assert keyframes[0] == 2 and np.array_equal(keyframes[1], latent)
        assert window.last_result is not None
    finally:
        window.shutdown()


def test_declining_the_restore_removes_the_autosave(qtbot, tmp_path):
    window, restored = _window_restoring(qtbot, tmp_path, Session(Scene(seed=5)),
                                         QMessageBox.StandardButton.No)
    try:
        assert not restored and window.stack.scene == Scene()
        assert not _autosave_path(tmp_path).exists()
    finally:
        window.shutdown()


@pytest.mark.parametrize("content", [b"{\"format\": \"ganinterface.sess", b"\x89PNG\r\n\x1a\n\x00",
                                     b'{"format": "someone.else", "version": 1}'])
def test_a_corrupt_or_foreign_autosave_is_reported_and_set_aside(qtbot, tmp_path, content):
    from PySide6.QtCore import QSettings

    from ganinterface.ui.main_window import MainWindow

    folder = tmp_path / "state"
    folder.mkdir()
    (folder / "session.json").write_bytes(content)
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, force_sync=True)
    window._ask.answer = YES
    try:
        assert not window.restore_autosave()
        [message] = window._ask.errors
        assert "\n" not in message and message.startswith(str(folder / "session.json") + ": ")
        [aside] = folder.glob("*.json")
        assert aside.name.startswith("session-unreadable-") and aside.read_bytes() == content
        assert aside.name in message
    finally:
        window.shutdown()


def test_stale_autosave_temporaries_are_removed_at_start(qtbot, tmp_path):
    folder = tmp_path / "state"
    folder.mkdir()
    stale = folder / ".session.json.0badf00d.tmp"
    stale.write_text("{")
    os.utime(stale, (0, 0))
    with open_window(qtbot, tmp_path):
        assert not stale.exists()


def test_changes_that_keep_coming_are_saved_every_few_seconds(qtbot, tmp_path, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(documents.time, "monotonic", lambda: clock[0])
    with open_window(qtbot, tmp_path) as window:
        for seed in range(1, 12):  # a drag: a change every half second, for five seconds
            window.stack.push(cmd.set_fields("Seed", seed=seed))
            if seed < 11:
                assert not _autosave_path(tmp_path).exists()
            clock[0] += 0.5
        assert userfiles.read_session(_autosave_path(tmp_path)).scene.seed == 11


# ---- two windows at once --------------------------------------------------------------------------

def _autosave(qtbot, folder):
    from PySide6.QtCore import QObject

    from ganinterface.ui.messages import MessageBoxes

    owner, ask = QObject(), MessageBoxes(None)
    ask.answer = YES
    collect = [Session(Scene(seed=1))]
    saver = documents.Autosave(owner, lambda: collect[0], ask, lambda _: None, folder=folder)
    return owner, saver, collect


def test_two_windows_autosave_to_their_own_files(qtbot, tmp_path):
    (_a, first, first_session), (_b, second, second_session) = (_autosave(qtbot, tmp_path),
                                                                 _autosave(qtbot, tmp_path))
    first_session[0], second_session[0] = Session(Scene(seed=1)), Session(Scene(seed=2))
    first.save_now()
    second.save_now()
    assert first.path != second.path
    assert userfiles.read_session(first.path).scene.seed == 1
    assert userfiles.read_session(second.path).scene.seed == 2
    first.discard()  # one window exits cleanly: the other's session stays
    assert userfiles.read_session(second.path).scene.seed == 2


def test_a_running_windows_session_is_not_offered_to_another(qtbot, tmp_path):
    _owner, running, _ = _autosave(qtbot, tmp_path)
    running.save_now()
    _other_owner, starting, _ = _autosave(qtbot, tmp_path)
    assert starting.take() is None
    assert running.path.exists()


def test_a_killed_windows_session_is_taken_up_from_any_slot(qtbot, tmp_path):
    _owner, running, _ = _autosave(qtbot, tmp_path)  # holds session.json
    left = tmp_path / "session-3.json"  # a killed second window's slot: no live lock
    userfiles.write_session(left, Session(Scene(seed=33)))
    _other_owner, starting, _ = _autosave(qtbot, tmp_path)
    assert starting.path == tmp_path / "session-2.json"
    assert starting.take().scene.seed == 33
    assert not left.exists() and starting.path.exists()  # moved into the new window's slot


def test_a_killed_process_leaves_its_slot_free(tmp_path):
    import subprocess
    import sys

    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from PySide6.QtCore import QLockFile\n"
        f"lock = QLockFile({str(tmp_path / 'session.lock')!r}); lock.setStaleLockTime(0)\n"
        "print(lock.tryLock(0), flush=True); time.sleep(60)")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "True"
        assert documents._take_free_slot(tmp_path)[1].name == "session-2.json"  # held
    finally:
        holder.kill()
        holder.wait()
    assert documents._take_free_slot(tmp_path)[1].name == "session.json"  # its process is gone


def test_a_latent_keyframe_keeps_its_noise_maps(tmp_path):
    from ganinterface.engine.animation import LatentKeyframe

    noise = {"b8.conv0": np.full((4, 4), -0.5, np.float32)}
    keyframe = LatentKeyframe(np.zeros((2, 3), np.float32), noise=noise)
    userfiles.write_session(tmp_path / "s.json", Session(Scene(), (keyframe,)))
    (back,) = userfiles.read_session(tmp_path / "s.json").keyframes
    assert back.detail is None and np.array_equal(back.noise["b8.conv0"], noise["b8.conv0"])
    data = json.loads((tmp_path / "s.json").read_text())
    data["keyframes"][0]["noise_maps"]["b8.conv0"] = encode_array(np.zeros(3, np.float32))
    (tmp_path / "s.json").write_text(json.dumps(data))
    with pytest.raises(UserFileError, match=r"session.keyframes\[0\].noise_maps\['b8.conv0'\] should be a 2-D map"):
        userfiles.read_session(tmp_path / "s.json")
    data["keyframes"][0] = {"latent": data["keyframes"][0]["latent"], "extra": 1}
    (tmp_path / "s.json").write_text(json.dumps(data))
    with pytest.raises(UserFileError, match=r"session.keyframes\[0\] should be"):
        userfiles.read_session(tmp_path / "s.json")
