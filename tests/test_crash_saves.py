"""Killed and failing saves: temporaries a killed writer leaves are cleaned up by the next write
into their folder; a failing save says so in one line and keeps the work unsaved-marked."""

from __future__ import annotations

import os
import time

from ganinterface import atomic
from ganinterface.atomic import atomic_write_text, remove_stale_temporaries


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
