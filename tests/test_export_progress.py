import io
import threading

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
