"""Reference clients the provider is measured against (benchmark code, not part of the package).

- :func:`asyncio_lookup`: the lean way, one event loop and keep-alive HTTP/1.1 connections written with
  the standard library's asyncio streams (what an aiohttp client does, without its dependency): calls
  started 1/qps apart, at most ``concurrency`` at once, bodies parsed with the decoder the provider uses
  (msgspec, floats kept as their text). It does no retries, no deadline, no scrubbing: a lower bound on
  CPU, not a product. This is the fetch anchor.
- :func:`asyncio_load`: the same fetch, end to end: each body's patents flattened into P026 rows
  (:func:`legal_rows`: the provider's columns, values and record keys, none of its checks) and landed
  in PostgreSQL (:class:`PostgresCopy`: ``COPY`` into a stage table, then, in the same transaction, the
  vanished rows of the write's patents deleted and one ``INSERT ... SELECT ... ON CONFLICT``, as the
  provider's ``sync`` does) or in a newline-delimited JSON file (:class:`NdjsonLines`: msgspec
  ``encode_lines``). One thread: psycopg's asyncio connection, so a write never stalls the calls.
- :func:`naive_lookup`: what a user writes by hand, a token and then one ``requests.get`` after another.

Each returns the completion times of its batches so the caller measures the steady-state rate exactly
as it does for the provider.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from hashlib import sha1
from itertools import starmap
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import msgspec

PATH = "/advanced-patent-data/legal-data"
#: What the provider's transport parses a body with: msgspec, a float kept as its text (``3.1``).
decode_body = msgspec.json.Decoder(float_hook=str).decode
#: Called with each batch's requested ids and its parsed ``data`` list, on the event loop.
Consumer = Callable[[Sequence[str], list[Any]], Awaitable[None]]


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
    base_url: str,
    token: str,
    apikey: str,
    numbers: Sequence[str],
    qps: float,
    concurrency: int,
    consume: Consumer | None = None,
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
            envelope = decode_body(body)
            if status != 200 or envelope.get("status") is not True:
                raise RuntimeError(f"reference call failed: {status} {envelope.get('error_code')}")
            if consume is not None:
                await consume(batch, envelope.get("data") or [])
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
        # Slots on a fixed schedule: a wake-up a little late (a busy loop) is made up by the next call
        # going at its own slot instead of being lost; more than a slot late, the schedule starts anew.
        next_slot = max(next_slot + interval, loop.time())
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


# ------------------------------------------------------------------------------------ end to end


def legal_rows(patent: dict[str, Any], fetched_at: str) -> list[tuple[Any, ...]]:
    """A P026 patent object as rows in the provider's column order, with its record keys: the sha1 of
    ``patent_id`` and the key columns (source, event_date, event_code, event_desc, event_vol,
    ref_country_code) joined by ``\x1f``, None as "". The flattening written as plainly as it can be,
    without the provider's checks (payload shapes, dates, NULs, lone surrogates, values of other types):
    an ``event_code`` sent as a number (parsed as its text) is the one value converted. The floor of
    what rows cost; ``cpu_per_patent.py`` checks it gives the rows ``LEGAL_INFORMATION.map_patent``
    gives."""
    pn, patent_id = patent.get("pn"), patent.get("patent_id")
    prefix = f"{patent_id}\x1f" if patent_id is not None else f"pn:{pn}\x1f"
    legal = patent.get("patsnap_legal_data") or {}
    rows = []
    append = rows.append
    for source in ("inpadoc", "official"):
        for item in legal.get(f"{source}_legal_data") or ():
            get = item.get
            date, code, desc = get("event_date"), get("event_code"), get("event_desc")
            country, vol = get("ref_country_code"), get("event_vol")
            others, status = get("event_others"), get("event_legal_status")
            if code is not None and type(code) is not str:
                code = str(code)
            key = sha1(
                f"{prefix}{source}\x1f{'' if date is None else date}\x1f{'' if code is None else code}\x1f"
                f"{'' if desc is None else desc}\x1f{'' if vol is None else vol}\x1f"
                f"{'' if country is None else country}".encode()
            ).hexdigest()
            append((key, pn, patent_id, source, date, code, desc, country, vol, others, status, fetched_at))
    return rows


def fetched_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class NdjsonLines:
    """Rows as newline-delimited JSON objects in column order (msgspec ``encode_lines`` of a struct per
    row, the provider's file format), one write per batch."""

    def __init__(self, path: str | Path, names: Sequence[str]) -> None:
        self._file = open(path, "wb")  # noqa: SIM115 - closed by close()
        self._row = msgspec.defstruct("Row", [(name, object) for name in names])
        self._encode_lines = msgspec.json.Encoder().encode_lines
        self.rows = 0

    async def consume(self, batch: Sequence[str], data: list[Any]) -> None:
        fetched_at = fetched_now()
        rows = [row for patent in data for row in legal_rows(patent, fetched_at)]
        self._file.write(self._encode_lines(list(starmap(self._row, rows))))
        self.rows += len(rows)

    async def close(self) -> None:
        self._file.close()


class PostgresCopy:
    """Rows written as the provider's ``sync`` writes them, in the fewest client steps: the batches
    that wait for the writer (at most ``group`` of them, 16 as the operators' ``WRITE_GROUP``) land in
    one transaction: ``COPY`` into a temporary stage table (``copy.write_row``), the rows of the write's
    patents that are no longer there deleted, and one ``INSERT ... SELECT ... ON CONFLICT`` upsert. The
    de-duplication, the sorting (the lock order) and the deletes are set operations on the server. A
    queue of ``buffer`` batches between the calls and the writer holds calls back when it lags."""

    def __init__(self, connection: Any, table: str, names: Sequence[str], group: int = 16, buffer: int = 32):
        self._connection = connection
        self._group = group
        self._queue: asyncio.Queue[tuple[Sequence[str], list[tuple[Any, ...]]] | None] = asyncio.Queue(buffer)
        columns = ", ".join(names)
        updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in names if name != "record_key")
        self._copy_sql = f"COPY patsnap_ref_stage ({columns}) FROM STDIN"
        self._delete_sql = (
            f"DELETE FROM {table} WHERE pn = ANY(%s) AND record_key NOT IN "
            "(SELECT record_key FROM patsnap_ref_stage)"
        )
        self._upsert_sql = (
            f"INSERT INTO {table} ({columns}) SELECT DISTINCT ON (record_key) {columns} "
            f"FROM patsnap_ref_stage ORDER BY record_key ON CONFLICT (record_key) DO UPDATE SET {updates}"
        )
        self._writer: asyncio.Task[None] | None = None
        self.rows = 0
        self.writes = 0

    @classmethod
    async def open(
        cls, conninfo: dict[str, Any], table: str, columns: Sequence[tuple[str, str]]
    ) -> PostgresCopy:
        """A fresh ``table`` of ``columns`` (name, SQL type), keyed on ``record_key``, indexed on ``pn``."""
        import psycopg

        connection = await psycopg.AsyncConnection.connect(**conninfo)
        body = ", ".join(f"{name} {sql_type}" for name, sql_type in columns)
        await connection.execute(f"DROP TABLE IF EXISTS {table}")
        await connection.execute(f"CREATE TABLE {table} ({body}, PRIMARY KEY (record_key))")
        await connection.execute(f"CREATE INDEX ON {table} (pn)")
        await connection.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS patsnap_ref_stage (LIKE {table}) ON COMMIT DELETE ROWS"
        )
        await connection.commit()
        sink = cls(connection, table, [name for name, _ in columns])
        sink._writer = asyncio.create_task(sink._write_all())
        return sink

    async def consume(self, batch: Sequence[str], data: list[Any]) -> None:
        fetched_at = fetched_now()
        await self._queue.put((batch, [row for patent in data for row in legal_rows(patent, fetched_at)]))

    async def _write_all(self) -> None:
        queue, done = self._queue, False
        while not done:
            item = await queue.get()
            group = []
            while item is not None:
                group.append(item)
                if len(group) == self._group or queue.empty():
                    break
                item = queue.get_nowait()
            done = item is None
            if group:
                await self._write(group)

    async def _write(self, group: list[tuple[Sequence[str], list[tuple[Any, ...]]]]) -> None:
        patents = [number for batch, _ in group for number in batch]
        async with self._connection.transaction(), self._connection.cursor() as cursor:
            async with cursor.copy(self._copy_sql) as copy:
                for _, rows in group:
                    for row in rows:
                        await copy.write_row(row)
            await cursor.execute(self._delete_sql, (patents,))
            await cursor.execute(self._upsert_sql)
        self.rows += sum(len(rows) for _, rows in group)
        self.writes += 1

    async def close(self) -> None:
        await self._queue.put(None)
        if self._writer is not None:
            await self._writer
        await self._connection.close()


def asyncio_load(
    base_url: str,
    client_id: str,
    client_secret: str,
    numbers: Sequence[str],
    qps: float,
    concurrency: int,
    destination: Callable[[], Awaitable[NdjsonLines | PostgresCopy]],
) -> tuple[Completion, int]:
    """:func:`asyncio_lookup` landing every body's rows in what ``destination()`` opens (on the loop);
    returns the completion times and the rows written."""
    token = fetch_token(base_url, client_id, client_secret)

    async def run() -> tuple[Completion, int]:
        sink = await destination()
        try:
            completion = await _lookup(base_url, token, client_id, numbers, qps, concurrency, sink.consume)
        finally:
            await sink.close()
        return completion, sink.rows

    return asyncio.run(run())


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
