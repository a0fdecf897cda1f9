"""Newline-delimited JSON files on any object storage, with rejects in a file beside them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

import msgspec

from airflow_provider_patsnap._compat import ObjectStoragePath
from airflow_provider_patsnap.endpoints import Record, Reject
from airflow_provider_patsnap.sinks.base import FetchedBatch, Sink, reject_row, utc_now
from airflow_provider_patsnap.sinks.names import rejects_file

_ENCODER = msgspec.json.Encoder()
_ESCAPING = json.JSONEncoder(ensure_ascii=True, default=repr)


def ndjson(records: Sequence[Record]) -> bytes:
    """One UTF-8 JSON object per line. msgspec writes a batch about 20 times faster than json; a batch it
    will not encode (a lone surrogate the mapping did not clean, say) is written by json with every
    non-ASCII character escaped, which any JSON reader takes."""
    try:
        return _ENCODER.encode_lines(records)
    except (msgspec.EncodeError, TypeError, ValueError):  # ValueError: UnicodeEncodeError
        return "".join(f"{_ESCAPING.encode(record)}\n" for record in records).encode("ascii")


def _remove_stale_temporaries(path: ObjectStoragePath) -> None:
    """A killed run never reached close(): the temporary files it left for ``path`` are garbage."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)


class _StagedFile:
    """A file written under a temporary name and moved into place only when the run succeeds."""

    def __init__(self, path: ObjectStoragePath) -> None:
        self.path = path
        self._temp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
        self._file: Any = self._temp.open("wb")

    def write(self, records: Sequence[Record]) -> None:
        if records:  # one write per batch
            self._file.write(ndjson(records))

    def close(self, ok: bool) -> None:
        self._file.close()
        if ok:
            self._temp.rename(self.path)
        else:
            self._temp.unlink(missing_ok=True)


class ObjectStorageSink(Sink):
    """Writes newline-delimited JSON (UTF-8) to ``path`` through a temporary file moved into place.

    Rejects go to ``<name>.rejects.jsonl`` beside it, only when there are some. A rerun replaces both
    files (a rerun without rejects removes the old rejects file); a failed run leaves them alone.
    """

    def __init__(self, path: ObjectStoragePath) -> None:
        super().__init__()
        self.path = path
        self.location = str(path)
        self.rejects_path = rejects_file(path)
        self.rejects_location = str(self.rejects_path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Both files' leftovers go now: the rejects file is staged only if this run has rejects.
        for target in (path, self.rejects_path):
            _remove_stale_temporaries(target)
        self._rows = _StagedFile(path)
        self._rejects: _StagedFile | None = None

    def write_batch(
        self, rows: list[Record], rejects: Sequence[Reject] = (), fetched: FetchedBatch | None = None
    ) -> list[Reject]:
        self._rows.write(rows)
        if rejects:
            if self._rejects is None:
                self._rejects = _StagedFile(self.rejects_path)
            rejected_at = utc_now()
            self._rejects.write([reject_row(reject, rejected_at) for reject in rejects])
        return list(rejects)

    def close(self, ok: bool) -> None:
        self._rows.close(ok)
        if self._rejects is not None:
            self._rejects.close(ok)
        elif ok:
            self.rejects_path.unlink(missing_ok=True)  # from an earlier run: no longer true
