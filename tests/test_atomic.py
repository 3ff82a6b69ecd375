import os
import sys

import pytest

from ganinterface.atomic import atomic_directory, atomic_write, atomic_write_text


class _Boom(Exception):
    pass


def test_atomic_write_replaces_file_only_on_success(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with atomic_write(target) as handle:
        handle.write(b"new contents")
        assert target.read_bytes() == b"old"  # not visible until the block ends
    assert target.read_bytes() == b"new contents"
    assert os.listdir(tmp_path) == ["out.bin"]


@pytest.mark.parametrize("error", [_Boom, KeyboardInterrupt])
def test_atomic_write_failure_keeps_old_file_and_leaves_no_temporary(tmp_path, error):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(error):
        with atomic_write(target) as handle:
            handle.write(b"half")
            raise error()
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_atomic_write_failure_without_previous_file_leaves_nothing(tmp_path):
    with pytest.raises(_Boom):
        with atomic_write(tmp_path / "new.bin") as handle:
            handle.write(b"half")
            raise _Boom()
    assert os.listdir(tmp_path) == []


def test_temporary_is_hidden_in_same_directory(tmp_path):
    with atomic_write(tmp_path / "x.txt", "w") as handle:
        names = os.listdir(tmp_path)
        handle.write("é")
    assert len(names) == 1 and names[0].startswith(".x.txt.") and names[0].endswith(".tmp")
    assert (tmp_path / "x.txt").read_text(encoding="utf-8") == "é"


def test_atomic_write_text_round_trip(tmp_path):
    atomic_write_text(tmp_path / "a.json", '{"a": 1}\n')
    assert (tmp_path / "a.json").read_text() == '{"a": 1}\n'


def test_atomic_write_rejects_read_modes(tmp_path):
    with pytest.raises(ValueError):
        with atomic_write(tmp_path / "a", "rb"):
            pass


def test_atomic_directory_appears_complete(tmp_path):
    target = tmp_path / "frames"
    with atomic_directory(target) as work:
        (work / "a.png").write_bytes(b"1")
        (work / "b.png").write_bytes(b"2")
        assert not target.exists()
    assert sorted(os.listdir(target)) == ["a.png", "b.png"]
    assert os.listdir(tmp_path) == ["frames"]


def test_atomic_directory_failure_leaves_nothing(tmp_path):
    with pytest.raises(_Boom):
        with atomic_directory(tmp_path / "frames") as work:
            (work / "a.png").write_bytes(b"1")
            raise _Boom()
    assert os.listdir(tmp_path) == []


def test_atomic_directory_replaces_existing_directory_as_a_whole(tmp_path):
    target = tmp_path / "frames"
    target.mkdir()
    (target / "stale.png").write_bytes(b"old")
    with atomic_directory(target) as work:
        (work / "fresh.png").write_bytes(b"new")
    assert os.listdir(target) == ["fresh.png"]
    assert os.listdir(tmp_path) == ["frames"]


def test_atomic_directory_failure_keeps_existing_directory(tmp_path):
    target = tmp_path / "frames"
    target.mkdir()
    (target / "stale.png").write_bytes(b"old")
    with pytest.raises(_Boom):
        with atomic_directory(target) as work:
            (work / "fresh.png").write_bytes(b"new")
            raise _Boom()
    assert os.listdir(target) == ["stale.png"]
    assert os.listdir(tmp_path) == ["frames"]


def test_atomic_directory_refuses_a_file_in_the_way(tmp_path):
    (tmp_path / "frames").write_bytes(b"x")
    with pytest.raises(FileExistsError):
        with atomic_directory(tmp_path / "frames"):
            pass


def test_atomic_path_renames_what_the_writer_made(tmp_path):
    from ganinterface.atomic import atomic_path

    with atomic_path(tmp_path / "video.mp4") as temporary:
        assert temporary.parent == tmp_path and temporary.name.startswith(".video.mp4.")
        temporary.write_bytes(b"frames")
    assert (tmp_path / "video.mp4").read_bytes() == b"frames"
    with pytest.raises(_Boom):
        with atomic_path(tmp_path / "other.mp4") as temporary:
            temporary.write_bytes(b"half")
            raise _Boom()
    assert os.listdir(tmp_path) == ["video.mp4"]


def test_non_durable_writes_are_still_atomic_and_skip_fsync(tmp_path, monkeypatch):
    from ganinterface.atomic import atomic_write_bytes

    synced = []
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd))
    atomic_write_bytes(tmp_path / "a.bin", b"data", durable=False)
    assert synced == []
    assert (tmp_path / "a.bin").read_bytes() == b"data"
    with pytest.raises(_Boom):
        with atomic_write(tmp_path / "a.bin", durable=False) as handle:
            handle.write(b"half")
            raise _Boom()
    assert (tmp_path / "a.bin").read_bytes() == b"data"
    assert os.listdir(tmp_path) == ["a.bin"]
    atomic_write_bytes(tmp_path / "b.bin", b"data")
    assert len(synced) == 2  # the file, then its directory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2 is Linux's")
def test_a_directory_is_replaced_in_one_swap_on_linux(tmp_path, monkeypatch):
    """Moving the old directory aside first leaves a moment with none: a kill there lost it."""
    from ganinterface import atomic

    target = tmp_path / "frames"
    with atomic_directory(target) as work:
        (work / "old.png").write_bytes(b"old")
    monkeypatch.setattr(atomic.os, "replace", _no_two_step_replace)
    with atomic_directory(target) as work:
        (work / "new.png").write_bytes(b"new")
    assert [p.name for p in target.iterdir()] == ["new.png"]
    assert [p.name for p in tmp_path.iterdir()] == ["frames"]  # the old one removed, no temporaries


def _no_two_step_replace(source, destination):
    raise AssertionError(f"moved {source} aside instead of swapping")
