"""Waiting that can be cut short: the clock every wait reads, and the task's cancellation.

Standard library only, so what a DAG file imports never pulls in the HTTP stack.
"""

from __future__ import annotations

import socket
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from airflow_provider_patsnap.exceptions import PatsnapCancelledError


class SystemClock:
    """Real time. Tests install a fake one with :func:`reset_shared_state` so waits cost nothing."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Wait up to ``seconds`` for ``event``; True when it was set."""
        return event.wait(seconds)


class Cancellation:
    """Set once the task is being killed: no new call starts and every wait ends at once.

    ``clock`` times :meth:`sleep`; a hook creates its cancellation before it has a transport (so a cancel
    during a slow ``get_connection`` is not lost) and gives it the transport's clock once there is one.
    """

    def __init__(self, clock: Any = None) -> None:
        self._event = threading.Event()
        self.clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self._listeners: list[Callable[[], None]] = []

    def on_cancel(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` on :meth:`cancel` (at once if already cancelled); return what unregisters it."""
        with self._lock:
            self._listeners.append(listener)
        if self._event.is_set():
            listener()

        def unregister() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unregister

    def watch(self, sock: socket.socket) -> None:
        """Remember a socket a call uses, to shut it down on :meth:`cancel` (at once if that came first:
        a call that passed :meth:`check` just before the cancel sends nothing more)."""
        with self._lock:
            self._sockets.add(sock)
        if self._event.is_set():
            self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed

    def cancel(self) -> None:
        """No new call or wait; calls in flight end now (their sockets are shut down under them)."""
        self._event.set()
        with self._lock:
            sockets, listeners = list(self._sockets), list(self._listeners)
        for listener in listeners:
            listener()
        for sock in sockets:
            self._shut(sock)

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise PatsnapCancelledError("the task was stopped: no further PatSnap call is made")

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` unless cancelled first (then raise)."""
        if seconds > 0:
            self.clock.wait(self._event, seconds)
        self.check()
