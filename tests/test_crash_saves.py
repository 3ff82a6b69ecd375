"""Killed and failing saves: temporaries a killed writer leaves are cleaned up by the next write
into their folder; a failing save says so in one line and keeps the work unsaved-marked."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from ganinterface import atomic
from ganinterface.engine import commands as cmd
from ganinterface.engine.renderer import Renderer
from ganinterface.engine.scene import Scene
from ganinterface.export import jobs
from ganinterface.export.userfiles import UserFileError
from ganinterface.atomic import atomic_write_text, remove_stale_temporaries
from crash_report import write_section
from ui_support import open_window, tiny_generator


def _age(path, seconds):
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_next_write_into_a_folder_removes_stale_temporaries_only(tmp_path):
    stale_file = tmp_path / ".scene.json.0123abcd.tmp"
    stale_folder = tmp_path / ".frames.89abcdef.tmp"
    young = tmp_path / ".scene.json.feedbeef.tmp"  # another process may be writing it right now
    not_ours = [tmp_path / ".notes.tmp", tmp_path / "scene.json.0123abcd.tmp",
                tmp_path / ".x.ZZZZZZZZ.tmp"]
    stale_file.write_text("half")
    stale_folder.mkdir()
    (stale_folder / "frame_0000.png").write_bytes(b"png")
    young.write_text("half")
    for path in not_ours:
        path.write_text("keep")
    for path in [stale_file, stale_folder, *not_ours]:
        _age(path, atomic.STALE_AFTER_S + 10)
    atomic_write_text(tmp_path / "other.json", "{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [young.name, "other.json", *(p.name for p in not_ours)])


def test_remove_stale_temporaries_reports_what_it_removed(tmp_path):
    stale = tmp_path / ".a.png.00000000.tmp"
    stale.write_bytes(b"")
    _age(stale, 3600)
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert remove_stale_temporaries(tmp_path / "missing") == []


# ---- saves killed at random points -----------------------------------------------------------------

KILLS_PER_KIND = 5
KILL_SEED = 2026


@pytest.mark.slow
def test_killed_saves_leave_the_old_or_the_new_file_and_the_next_write_cleans_up(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    driver = Path(__file__).with_name("crash_writers.py")
    finished = subprocess.run([sys.executable, str(driver), str(folder), str(KILL_SEED),
                               str(KILLS_PER_KIND)], capture_output=True, text=True, timeout=300,
                              cwd=driver.parent)
    assert finished.returncode == 0, finished.stderr
    kills = [json.loads(line) for line in finished.stdout.splitlines()]
    assert len(kills) == KILLS_PER_KIND * 8
    assert {kill["outcome"] for kill in kills} <= {"A", "B"}, kills  # never missing, partial, mixed
    assert sum(kill["mid_write"] for kill in kills) >= len(kills) // 4  # the kills did hit writes

    left = _temporaries(folder)
    for temporary in left:  # as they will be at the next start, a while later
        _age(temporary, atomic.STALE_AFTER_S + 10)
    atomic_write_text(folder / "next.json", "{}")  # this process's first write into the folder
    assert left and not _temporaries(folder)
    _report(kills, len(left))


def _temporaries(folder: Path) -> list[Path]:
    return [path for path in folder.iterdir() if atomic.TEMPORARY_NAME.fullmatch(path.name)]


def _report(kills: list[dict], temporaries_left: int) -> None:
    rows = []
    for kind in dict.fromkeys(kill["kind"] for kill in kills):
        mine = [kill for kill in kills if kill["kind"] == kind]
        outcomes = Counter(kill["outcome"] for kill in mine)
        rows.append(f"| {kind} | {len(mine)} | {sum(k['mid_write'] for k in mine)} | "
                    f"{outcomes['A'] + outcomes['B']} | "
                    f"{len(mine) - outcomes['A'] - outcomes['B']} |")
    body = "\n".join([
        f"Measured by `tests/test_crash_saves.py` (seed {KILL_SEED}): each output is written in a "
        "loop, B, A, B, ..., by a forked process through the app's own code, and SIGKILLed after a "
        "random delay of up to two writes. \"Complete\" means the file (or folder, or checkpoint "
        "with its sidecar, or without it between the two files) is byte for byte the old or the "
        "new version. The delays are seeded; which kills land inside a write depends on the "
        "machine's timing, so that column varies from run to run.",
        "",
        "| output | kills | killed mid-write (left a temporary) | old or new, complete "
        "| partial, missing or mixed |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"The kills left {temporaries_left} hidden temporaries; the next write into the folder "
        "removed all of them (those older than two minutes: a younger one may be a write in "
        "progress).",
    ])
    write_section("Killed saves", body)



# ---- saves that fail ----------------------------------------------------------------------------------

class _FullDisk:
    """A file handle on a disk that is full: every write fails."""

    def __init__(self, handle):
        self.handle = handle

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return self.handle.__exit__(*exc_info)

    def __getattr__(self, name):
        return getattr(self.handle, name)

    def write(self, _data):
        _no_space()


def _no_space(*_args):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture
def full_disk(monkeypatch):
    """Writes through atomic_write, and a PNG sequence's frames, fail as on a full disk (an MP4 is
    written by ffmpeg itself: test_export_animation covers ffmpeg failing)."""
    monkeypatch.setattr(atomic, "open", lambda *args, **kwargs: _FullDisk(open(*args, **kwargs)),
                        raising=False)
    monkeypatch.setattr(Path, "write_bytes", _no_space)


@pytest.fixture
def read_only(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(atomic, "open", refuse, raising=False)
    monkeypatch.setattr(os, "access", lambda *_args, **_kwargs: False)


def _changed(window):
    window.stack.push(cmd.set_fields("Seed", seed=5))
    return window.stack.scene


def _still_unsaved(window, scene, errors, problem):
    [message] = errors
    assert problem in message and "\n" not in message
    assert window.stack.scene == scene and not window.stack.is_clean()
    assert window.isWindowModified() and "[*]" in window.windowTitle()


@pytest.mark.parametrize("failure, problem", [("full_disk", "cannot write (No space left on device)"),
                                              ("read_only", "cannot write (Permission denied)")])
def test_a_failing_scene_save_says_so_and_keeps_the_work_unsaved(qtbot, tmp_path, request, failure,
                                                                  problem):
    target = tmp_path / "scene.json"
    target.write_text("the previous save")
    with open_window(qtbot, tmp_path) as window:
        scene = _changed(window)
        request.getfixturevalue(failure)
        assert not window.documents.write_scene(target)
        _still_unsaved(window, scene, window._ask.errors, f"{target}: {problem}")
        assert window.documents.opened is None
    assert target.read_text() == "the previous save" and os.listdir(tmp_path).count("scene.json") == 1
    assert not _temporaries(tmp_path)


def test_saving_into_a_file_as_if_a_folder_says_which_part_is_a_file(qtbot, tmp_path):
    (tmp_path / "notes.txt").write_text("")
    with open_window(qtbot, tmp_path) as window:
        scene = _changed(window)
        assert not window.documents.write_scene(tmp_path / "notes.txt" / "scene.json")
        _still_unsaved(window, scene, window._ask.errors,
                       f"cannot write: {tmp_path / 'notes.txt'} is a file, not a folder")


def test_a_failing_recipe_save_says_so_and_keeps_the_old_recipe(qtbot, tmp_path, full_disk):
    target = tmp_path / "recipe.json"
    target.write_text("the previous recipe")
    with open_window(qtbot, tmp_path) as window:
        scene = _changed(window)
        assert not window.documents.save_recipe(target)
        _still_unsaved(window, scene, window._ask.errors, f"{target}: cannot write (No space left")
    assert target.read_text() == "the previous recipe" and not _temporaries(tmp_path)


def test_a_failing_autosave_goes_to_the_status_bar_not_a_dialog(qtbot, tmp_path, full_disk):
    with open_window(qtbot, tmp_path) as window:
        _changed(window)
        window.autosave.save_now()
        assert window._ask.errors == []
        assert window.statusBar().currentMessage().startswith("Autosave failed: ")
        assert "No space left on device" in window.statusBar().currentMessage()
    assert not (tmp_path / "state" / "session.json").exists()


@pytest.mark.parametrize("name", ["image.png", "animation.gif", "frames"])
def test_an_export_on_a_full_disk_is_one_line_and_keeps_the_old_file(tmp_path, full_disk, name):
    target = tmp_path / name
    renderer = Renderer(tiny_generator())
    with pytest.raises(UserFileError) as error:
        if name == "image.png":
            jobs.export_image(renderer, Scene(seed=1), target)
        else:
            jobs.export_animation(renderer, [Scene(seed=1), Scene(seed=2)], target, fps=12)
    assert str(error.value).startswith(f"{target}: cannot write") and "\n" not in str(error.value)
    assert not target.exists() and not _temporaries(tmp_path)


def test_an_export_into_a_read_only_folder_is_refused_before_rendering(tmp_path, read_only):
    class NeverRenders:
        def render(self, *_args):
            raise AssertionError("rendered although the output cannot be written")

    with pytest.raises(UserFileError) as error:
        jobs.export_animation(NeverRenders(), [Scene(seed=1)], tmp_path / "a.gif", fps=12)
    assert str(error.value) == (f"{tmp_path / 'a.gif'}: cannot write: no permission to write in "
                                f"{tmp_path}")
