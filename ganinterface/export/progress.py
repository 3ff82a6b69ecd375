"""Progress reporting and cancellation shared by the window's export dialog and the command line.

A long job takes ``progress`` (any callable ``(done, total)``) and ``cancel`` (a ``CancelToken``) and
checks the token between steps; the dialog's Cancel button and the CLI's Ctrl-C both end up there.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

from tqdm import tqdm


class Cancelled(Exception):
    """The user cancelled a job; whatever it was writing has been removed."""


class ProgressCallback(Protocol):
    def __call__(self, done: int, total: int) -> None: ...


class CancelToken:
    """A flag any thread may set and the worker polls; once cancelled it stays cancelled."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled")


def no_progress(done: int, total: int) -> None:
    """The default progress callback: report nothing."""


class TqdmProgress:
    """A ``(done, total)`` callback drawing a tqdm bar on stderr; use it as a context manager.

    Without a ``total``, the bar is drawn from the first call, which brings one: a bar started
    without it would print a stray count ("sampling: 0image") before the first step.  Its clock
    still starts when this object is made, with the job: a bar whose first step came after two
    pictures of 4 s each read "2/2 [00:00, 57 pictures/s]".
    """

    def __init__(self, description: str = "", unit: str = "frame", total: int | None = None,
                 **tqdm_kwargs: Any) -> None:
        self._settings = dict(desc=description, unit=unit, dynamic_ncols=True, **tqdm_kwargs)
        self._began = time.time()  # tqdm's own clock
        self._bar: tqdm | None = None if total is None else self._start(total)

    def _start(self, total: int) -> tqdm:
        bar = tqdm(total=total, **self._settings)
        bar.start_t = bar.last_print_t = self._began
        return bar

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            self._bar = self._start(total)
        if self._bar.total != total:
            self._bar.total = total
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> "TqdmProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
