"""A wall-clock deadline for a whole HTTP call, enforced on every socket read and write.

requests applies its read timeout to each socket read, so a peer that trickles one byte every half
second keeps a call alive for ever. Here every connection's socket is wrapped: before each read or
send the socket timeout is cut to what is left of the calling thread's deadline, and a call past its
deadline fails with ``TimeoutError`` whatever the peer does, an HTTP proxy answering ``CONNECT``
included. Threads share pooled connections, so the deadline is per thread (each call sets its own),
never per connection.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_current = threading.local()


class DeadlineExceeded(TimeoutError):
    """The call's wall-clock budget ran out (urllib3 turns it into a read or connect timeout)."""


@contextmanager
def deadline(seconds: float, watch: Callable[[Any], None] | None = None) -> Iterator[None]:
    """Bound every socket operation of this thread's calls inside the block to ``seconds`` in all.

    ``watch`` is told each socket the block uses, so a canceller can shut it down from another thread
    (which ends a read blocked on it at once).
    """
    previous = getattr(_current, "at", None), getattr(_current, "watch", None)
    _current.at, _current.watch = time.monotonic() + seconds, watch
    try:
        yield
    finally:
        _current.at, _current.watch = previous


def remaining() -> float | None:
    """Seconds left of this thread's deadline, or None outside :func:`deadline`."""
    at = getattr(_current, "at", None)
    return None if at is None else at - time.monotonic()


class _DeadlineSocket:
    """A socket whose every operation first cuts its timeout to the thread's remaining deadline."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._timeout: float | None = sock.gettimeout()
        self._watched_by: Any = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def arm(self) -> None:
        watch = getattr(_current, "watch", None)
        if watch is not None and watch is not self._watched_by:
            watch(self._sock)
            self._watched_by = watch
        left = remaining()
        if left is None:
            self._sock.settimeout(self._timeout)
            return
        if left <= 0:
            raise DeadlineExceeded("the call's deadline passed")
        self._sock.settimeout(left if self._timeout is None else min(left, self._timeout))

    def settimeout(self, value: float | None) -> None:
        self._timeout = value
        self._sock.settimeout(value)

    def gettimeout(self) -> float | None:
        return self._timeout

    def sendall(self, data: Any, *args: Any) -> None:
        self.arm()
        self._sock.sendall(data, *args)

    def send(self, data: Any, *args: Any) -> int:
        self.arm()
        return int(self._sock.send(data, *args))

    def recv(self, size: int, *args: Any) -> bytes:
        self.arm()
        return bytes(self._sock.recv(size, *args))

    def recv_into(self, buffer: Any, *args: Any) -> int:
        self.arm()
        return int(self._sock.recv_into(buffer, *args))

    def makefile(self, mode: str = "r", buffering: int | None = None, **kwargs: Any) -> Any:
        if "r" not in mode or "w" in mode:
            return self._sock.makefile(mode, buffering, **kwargs)
        # The socket's own SocketIO keeps the reference count that lets http.client close the
        # connection while the response body is still being read.
        reader = _DeadlineReader(self._sock.makefile("rb", buffering=0), self)
        return reader if buffering == 0 else io.BufferedReader(reader)


class _DeadlineReader(io.RawIOBase):
    def __init__(self, raw: Any, owner: _DeadlineSocket) -> None:
        super().__init__()
        self._raw = raw
        self._owner = owner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self._owner.arm()
        return int(self._raw.readinto(buffer))

    def close(self) -> None:
        self._raw.close()
        super().close()


class _DeadlineConnectionMixin:
    """The deadline from the first byte: the proxy's answer to CONNECT (read before any TLS handshake,
    and before :meth:`connect` returns) is read through the deadline too."""

    sock: Any

    def _tunnel(self) -> None:
        raw = self.sock
        self.sock = _DeadlineSocket(raw)
        try:
            super()._tunnel()  # type: ignore[misc]
        finally:
            if self.sock is not None:  # the tunnel closes the connection when the proxy refuses
                self.sock = raw

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        left = remaining()
        if left is not None and left <= 0:  # a TLS handshake trickled past the deadline
            raise DeadlineExceeded("the call's deadline passed while connecting")
        self.sock = _DeadlineSocket(self.sock)


class _DeadlineHTTPConnection(_DeadlineConnectionMixin, HTTPConnection):
    pass


class _DeadlineHTTPSConnection(_DeadlineConnectionMixin, HTTPSConnection):
    pass


class _DeadlineHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _DeadlineHTTPConnection


class _DeadlineHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


_POOLS = {"http": _DeadlineHTTPConnectionPool, "https": _DeadlineHTTPSConnectionPool}


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter with connections that honour :func:`deadline` (proxied ones too)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager
