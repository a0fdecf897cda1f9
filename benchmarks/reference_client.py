"""Two reference clients the provider is measured against (benchmark code, not part of the package).

- :func:`asyncio_lookup`: the lean way, one event loop and keep-alive HTTP/1.1 connections written with
  the standard library's asyncio streams (what an aiohttp client does, without its dependency): calls
  started 1/qps apart, at most ``concurrency`` at once, bodies parsed with the same ``json.loads`` the
  provider uses. It does no retries, no deadline, no scrubbing: a lower bound on CPU, not a product.
- :func:`naive_lookup`: what a user writes by hand, a token and then one ``requests.get`` after another.

Both return the completion times of their batches so the caller measures the steady-state rate exactly
as it does for the provider.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlsplit

PATH = "/advanced-patent-data/legal-data"


class Completion:
    """When each batch completed (seconds since the start) and how many ids had been fetched by then."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.stamps: list[tuple[float, int]] = []
        self.done = 0

    def add(self, patents: int) -> None:
        self.done += patents
        self.stamps.append((time.perf_counter() - self.started, self.done))


def fetch_token(base_url: str, client_id: str, client_secret: str) -> str:
    import requests

    response = requests.post(
        f"{base_url}/oauth/token",
        auth=(client_id, client_secret),
        data={"grant_type": "client_credentials"},
        timeout=30,
    )
    return str(response.json()["token"])


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
    return status, await reader.readexactly(length)


async def _lookup(
    base_url: str, token: str, apikey: str, numbers: Sequence[str], qps: float, concurrency: int
) -> Completion:
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    in_flight = asyncio.Semaphore(concurrency)
    completion = Completion()
    headers = f"Host: {parts.netloc}\r\nAuthorization: Bearer {token}\r\nConnection: keep-alive\r\n\r\n"

    async def call(batch: Sequence[str]) -> None:
        try:
            query = f"patent_number={quote(','.join(batch), safe='')}&apikey={quote(apikey)}"
            request = f"GET {PATH}?{query} HTTP/1.1\r\n{headers}".encode("ascii")
            connection = idle.pop() if idle else await asyncio.open_connection(host, port)
            status, body = await _exchange(*connection, request)
            idle.append(connection)
            envelope = json.loads(body.decode("utf-8"), parse_float=str)
            if status != 200 or envelope.get("status") is not True:
                raise RuntimeError(f"reference call failed: {status} {envelope.get('error_code')}")
            completion.add(len(batch))
        finally:
            in_flight.release()

    loop = asyncio.get_running_loop()
    interval = 1.0 / qps if qps > 0 else 0.0
    next_slot = loop.time()
    tasks = []
    for start in range(0, len(numbers), 100):
        await in_flight.acquire()
        wait = next_slot - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        next_slot = max(next_slot, loop.time()) + interval
        tasks.append(asyncio.create_task(call(numbers[start : start + 100])))
    await asyncio.gather(*tasks)
    for _, writer in idle:
        writer.close()
    return completion


def asyncio_lookup(
    base_url: str, client_id: str, client_secret: str, numbers: Sequence[str], qps: float, concurrency: int
) -> Completion:
    token = fetch_token(base_url, client_id, client_secret)
    return asyncio.run(_lookup(base_url, token, client_id, numbers, qps, concurrency))


def naive_lookup(base_url: str, client_id: str, client_secret: str, numbers: Sequence[str]) -> Completion:
    """One token, then one call after another."""
    import requests

    token = fetch_token(base_url, client_id, client_secret)
    completion = Completion()
    for start in range(0, len(numbers), 100):
        batch = numbers[start : start + 100]
        response = requests.get(
            f"{base_url}{PATH}",
            params={"apikey": client_id, "patent_number": ",".join(batch)},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        body: Any = response.json()
        if not body.get("status"):
            raise RuntimeError(f"naive call failed: {body.get('error_code')}")
        completion.add(len(batch))
    return completion
