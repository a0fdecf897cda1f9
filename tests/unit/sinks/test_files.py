"""The NDJSON file sink's encoding: one object per line, what json.loads reads back, UTF-8 always."""

from __future__ import annotations

import json
from typing import Any

from airflow_provider_patsnap.sinks.files import NdjsonEncoder

RECORDS = [
    {"record_key": "a" * 40, "pn": "CN1A", "event_date": 20211207, "event_desc": "专利权的终止", "vol": None},
    {"record_key": "b" * 40, "pn": "JP2B", "event_date": None, "event_desc": "権利消滅", "vol": "1.10"},
]


def ndjson(records: list[dict[str, Any]]) -> bytes:
    """The records as the sink writes them: tuples in the order of their fields."""
    names = list(records[0])
    return NdjsonEncoder(names)([tuple(record[name] for name in names) for record in records])


def test_each_row_is_one_line_that_json_reads_back_exactly() -> None:
    encoded = ndjson(RECORDS)
    assert encoded.endswith(b"\n") and encoded.count(b"\n") == len(RECORDS)
    assert [json.loads(line) for line in encoded.decode("utf-8").splitlines()] == RECORDS
    assert "专利权的终止".encode() in encoded  # UTF-8 as is, not escaped


def test_text_that_is_not_utf8_encodable_is_escaped_not_fatal() -> None:
    rows = [*RECORDS, {**RECORDS[0], "record_key": "c" * 40, "event_desc": "lone \ud800 surrogate"}]
    encoded = ndjson(rows)
    encoded.decode("ascii")  # the fallback escapes everything outside ASCII: valid UTF-8 too
    assert [json.loads(line) for line in encoded.decode("ascii").splitlines()] == rows
