import io
import re
import threading
import time

import pytest

from ganinterface.export.progress import CancelToken, Cancelled, TqdmProgress


def test_cancel_token_starts_clear_and_stays_cancelled():
    token = CancelToken()
    assert not token.cancelled
    token.raise_if_cancelled()  # no exception yet
    token.cancel()
    token.cancel()
    assert token.cancelled
    with pytest.raises(Cancelled):
        token.raise_if_cancelled()


def test_cancel_token_set_from_another_thread_is_seen():
    token = CancelToken()
    thread = threading.Thread(target=token.cancel)
    thread.start()
    thread.join()
    assert token.cancelled


def test_tqdm_progress_tracks_done_and_total():
    stream = io.StringIO()
    with TqdmProgress("frames", file=stream, mininterval=0) as progress:
        for done in range(1, 6):
            progress(done, 5)
        assert progress._bar.n == 5 and progress._bar.total == 5
    assert "5/5" in stream.getvalue()


def test_a_bar_without_a_total_draws_nothing_until_the_first_step_brings_one():
    stream = io.StringIO()
    with TqdmProgress("sampling", unit="image", file=stream, mininterval=0) as progress:
        assert stream.getvalue() == ""
        progress(32, 100)
        assert "sampling:  32%" in stream.getvalue() and "32/100" in stream.getvalue()
    # the stray line was a bare count with no total: "sampling: 0image [...]"
    assert not re.search(r"sampling: +0image", stream.getvalue())


def test_a_bar_never_stepped_prints_nothing():
    stream = io.StringIO()
    with TqdmProgress("scoring edits", unit="edit", file=stream):
        pass
    assert stream.getvalue() == ""


def test_a_bar_started_by_its_first_step_counts_time_from_the_job_start():
    stream = io.StringIO()
    with TqdmProgress("project", unit="picture", file=stream, mininterval=0) as progress:
        time.sleep(0.3)  # the first two pictures take this long, and come back together
        progress(2, 2)
        assert progress._bar.format_dict["elapsed"] >= 0.3
        assert progress._bar.format_dict["rate"] is None or progress._bar.format_dict["rate"] <= 2 / 0.3
