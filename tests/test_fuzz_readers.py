"""Every reader against malformed and hostile files (issue 20): each file tried either loads or is
refused with one clear line naming it (``UserFileError``, ``CheckpointError``); never another
exception, and never a hang (each file has ``SECONDS_PER_FILE``).

The counts of this run are the figures of ``docs/reliability.md`` ("Hostile and malformed files"):
``test_the_report_shows_what_was_tried`` checks the committed table lists the readers and numbers of
files this run tried, none of them with another outcome, and rewrites it when
``GANINTERFACE_WRITE_REPORTS=1``. Examples are drawn derandomized, with no example database.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import tempfile
from pathlib import Path

import hypothesis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.configuration import set_hypothesis_home_dir

from ganinterface.export.userfiles import UserFileError
from ganinterface.models import limits
from ganinterface.models.base import CheckpointError
from hostile_files import READERS, FuzzedReader, make_valid

SECONDS_PER_FILE = 20
CLEAR_ERRORS = (UserFileError, CheckpointError)
REPORT = Path(__file__).parents[1] / "docs" / "reliability.md"
SECTION = "## Hostile and malformed files"
HEAVY_FACTOR = 20  # the slow run tries this many times as many files per reader

set_hypothesis_home_dir(tempfile.mkdtemp(prefix="hypothesis-"))  # its caches stay out of the repository
settings.register_profile("fuzz", derandomize=True, database=None, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                 HealthCheck.large_base_example])

OUTCOMES: dict[str, collections.Counter] = {}


class Hang(BaseException):  # not an Exception: no reader's ``except Exception`` can swallow it
    pass


def _alarm(signum, frame):
    raise Hang(f"no answer within {SECONDS_PER_FILE} s")


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    return make_valid(tmp_path_factory.mktemp("valid"))


def outcome(reader: FuzzedReader, files: dict[str, bytes], folder: Path) -> str:
    """"loaded" or "refused"; anything else fails the test (and is shrunk to a small example)."""
    for name, data in files.items():
        (folder / name).write_bytes(data)
    path = folder / next(iter(files))
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, SECONDS_PER_FILE)
    try:
        reader.read(path)
    except CLEAR_ERRORS as error:
        message = str(error)
        assert "\n" not in message, f"{reader.name}: more than one line: {message!r}"
        assert re.match(re.escape(str(folder)) + r"/\S+: ", message), f"{reader.name}: names no file: {message!r}"
        return "refused"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return "loaded"


def fuzz(reader: FuzzedReader, valid, examples: int, counts: collections.Counter) -> None:
    @settings(settings.get_profile("fuzz"), max_examples=examples)
    @given(files=reader.files(valid))
    def run(files):
        folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
        try:
            result = outcome(reader, files, folder)
        except BaseException:
            counts["anything else"] += 1
            raise
        finally:
            shutil.rmtree(folder)
        counts[result] += 1

    run()


@pytest.mark.slow
@pytest.mark.parametrize("reader", READERS, ids=[r.name for r in READERS])
def test_every_file_loads_or_is_refused_in_one_line(reader, valid):
    counts = collections.Counter()
    fuzz(reader, valid, reader.examples, counts)
    OUTCOMES[reader.name] = counts


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("GANINTERFACE_HEAVY_FUZZ") != "1",
                    reason="minutes long: set GANINTERFACE_HEAVY_FUZZ=1")
@pytest.mark.parametrize("reader", READERS, ids=[r.name for r in READERS])
def test_many_more_files_load_or_are_refused(reader, valid):
    fuzz(reader, valid, reader.examples * HEAVY_FACTOR, collections.Counter())


# ---- the report -------------------------------------------------------------------------------------

def report_table(outcomes: dict[str, collections.Counter]) -> str:
    lines = ["| reader | files tried | loaded | refused with one clear line | anything else |",
             "|---|---:|---:|---:|---:|"]
    for reader in READERS:
        counts = outcomes[reader.name]
        tried = counts["loaded"] + counts["refused"] + counts["anything else"]
        lines.append(f"| {reader.name} | {tried} | {counts['loaded']} | {counts['refused']} | "
                     f"{counts['anything else']} |")
    return "\n".join(lines)


def report_section(outcomes: dict[str, collections.Counter]) -> str:
    return f"""{SECTION}

Every reader the window and the command line use was given malformed and hostile files drawn by
`tests/test_fuzz_readers.py` (strategies in `tests/hostile_files.py`): valid files with bytes
flipped, cut, inserted or removed; a JSON value swapped for a wrong type, NaN, infinity, a huge or
negative number, a 5000-digit integer or 100,000 levels of nesting; keys removed and added; a
checkpoint's configuration, resolution, tensor shapes or key names changed; and generated
garbage. Each file must load, or be refused with one line that names it (`UserFileError`,
`CheckpointError`) within {SECONDS_PER_FILE} s; anything else fails the test. A checkpoint that
asks for a network too large to build (over {limits.MAX_RESOLUTION} px a side, or over {limits.MAX_VALUES:,} parameters and buffers
estimated from its configuration) is refused before anything is allocated
(`tests/test_fuzz_limits.py`), and one that asks to run a callable, even from inside a tensor
storage, is refused for safety, not called corrupt (`tests/test_fuzz_refusals.py`).

{report_table(outcomes)}

These are the counts of one normal test run (hypothesis {hypothesis.__version__}, derandomized, no
example database). Every run tries as many files per reader and must have none in the last column;
the test checks both against this table. The split between loaded and refused can move by a few
files from run to run, because hypothesis also draws constants it finds in the modules the test
process has imported. `GANINTERFACE_HEAVY_FUZZ=1 pytest -m slow tests/test_fuzz_readers.py` tries
{HEAVY_FACTOR} times as many files (all handled when this was written);
`GANINTERFACE_WRITE_REPORTS=1 pytest tests/test_fuzz_readers.py` rewrites this section.
"""


def _replace_section(document: str, section: str) -> str:
    start = document.find(SECTION)
    if start < 0:
        return document.rstrip("\n") + "\n\n" + section
    end = document.find("\n## ", start + len(SECTION))
    return document[:start] + section + (document[end + 1:] if end >= 0 else "")


def test_the_report_shows_what_was_tried():
    missing = [reader.name for reader in READERS if reader.name not in OUTCOMES]
    if missing:
        pytest.skip(f"the report needs every reader's run; not run here: {', '.join(missing)}")
    assert all(counts["anything else"] == 0 for counts in OUTCOMES.values())
    section = report_section(OUTCOMES)
    if os.environ.get("GANINTERFACE_WRITE_REPORTS") == "1":
        existing = REPORT.read_text() if REPORT.exists() else "# Reliability\n"
        REPORT.write_text(_replace_section(existing, section))
    committed = REPORT.read_text()
    assert SECTION in committed
    assert _rows(committed[committed.index(SECTION):]) == [(name, tried, "0") for name, tried, _ in _rows(report_table(OUTCOMES))], (
        "docs/reliability.md lists other readers or counts than this run tried (rerun with "
        "GANINTERFACE_WRITE_REPORTS=1)")


def _rows(text: str) -> list[tuple[str, str, str]]:
    """(reader, files tried, anything else) of each row of the report's table."""
    return re.findall(r"^\| ([^|]+?) \| (\d+) \| \d+ \| \d+ \| (\d+) \|$", text, re.M)
