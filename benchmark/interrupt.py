"""Turning SIGINT and SIGTERM into an exception the job can clean up after.

Inside `stop_on_signals()`, either signal raises `Interrupted` (a KeyboardInterrupt) in the main thread, so
the runner's interrupt branch ends the MLflow run as KILLED and keeps the last checkpoint. Code that must not
be cut in half (writing a checkpoint, logging an epoch) runs inside `deferred()`: a signal arriving there is
raised as soon as the block ends. After the first signal, further ones are ignored while the job cleans up
(SIGKILL still ends it at once).
"""
from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """The job was asked to stop by a signal (SIGINT: Ctrl-C, SIGTERM: a scheduler or `kill`)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        super().__init__(f"interrupted by {self.signal_name}")

    @property
    def exit_code(self) -> int:
        """The shell convention for a process ended by this signal: 128 + its number."""
        return 128 + self.signum


class _State:
    active = False  # whether our handlers are installed
    stopping = False  # a signal was already raised: ignore further ones
    defer_depth = 0
    pending: int | None = None  # a signal that arrived inside deferred()


def _handler(signum: int, frame: FrameType | None) -> None:
    if _State.stopping:
        print(f"[benchmark] {signal.Signals(signum).name} again: already stopping", file=sys.stderr)
        return
    if _State.defer_depth > 0:
        _State.pending = signum
        return
    _State.stopping = True
    raise Interrupted(signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Install the handlers for the duration of the block, then restore the previous ones. Outside the main
    thread (signals cannot be handled there) this does nothing."""
    if threading.current_thread() is not threading.main_thread() or _State.active:
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    _State.active, _State.stopping, _State.defer_depth, _State.pending = True, False, 0, None
    for sig in SIGNALS:
        signal.signal(sig, _handler)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _State.active, _State.stopping, _State.defer_depth, _State.pending = False, False, 0, None


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold back a signal that arrives inside the block; raise it (as Interrupted) when the block ends."""
    _State.defer_depth += 1
    try:
        yield
    finally:
        _State.defer_depth -= 1
    if _State.defer_depth == 0 and _State.pending is not None and not _State.stopping:
        signum, _State.pending = _State.pending, None
        _State.stopping = True
        raise Interrupted(signum)
