"""The declarative table of PatSnap endpoints.

One :class:`Endpoint` per data API: where it lives, which parameters it takes, where its payload sits in
a per-patent object, how that payload becomes flat rows and which columns identify a row. Operators,
SQL tables, docs and tests are all driven from :data:`ENDPOINTS`; adding an API is one entry here and a
few lines of operator class.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

IdKind = Literal["patent_id", "patent_number"]
ID_KINDS: tuple[IdKind, ...] = ("patent_id", "patent_number")
MAX_BATCH = 100
MAX_ID_LENGTH = 64

Record = dict[str, Any]


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str = "TEXT"
    description: str = ""


COMMON_HEAD = (
    Column("record_key", "VARCHAR(40)", "sha1 of patent_id and the key columns; the table's primary key"),
    Column("pn", "VARCHAR(64)", "patent number"),
    Column("patent_id", "VARCHAR(64)", "PatSnap patent id"),
)
COMMON_TAIL = (Column("fetched_at", "VARCHAR(32)", "UTC time the row was fetched, ISO 8601"),)


@dataclass(frozen=True)
class Endpoint:
    """One PatSnap data API and the shape of the rows it yields."""

    code: str
    name: str
    title: str
    path: str
    payload_key: str
    record_columns: tuple[Column, ...]
    key_columns: tuple[str, ...]
    to_records: Callable[[Any], Iterator[Record]]
    method: str = "GET"
    params: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def default_table(self) -> str:
        return f"patsnap_{self.name}"

    @property
    def columns(self) -> tuple[Column, ...]:
        return (*COMMON_HEAD, *self.record_columns, *COMMON_TAIL)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    def rows(self, patent: Mapping[str, Any], fetched_at: str) -> Iterator[Record]:
        """Turn one per-patent object from ``data`` into flat rows with every column present."""
        pn, patent_id = as_text(patent.get("pn")), as_text(patent.get("patent_id"))
        for record in self.to_records(patent.get(self.payload_key)):
            row: Record = {"record_key": "", "pn": pn, "patent_id": patent_id}
            # Patent-level fields (P022's ``lang``) fill columns the record itself does not carry.
            row.update(
                (name, record[name] if name in record else as_text(patent.get(name)))
                for name in (column.name for column in self.record_columns)
            )
            row["fetched_at"] = fetched_at
            row["record_key"] = record_key(patent_id, [row[name] for name in self.key_columns])
            yield row


def record_key(patent_id: str | None, key_values: list[Any]) -> str:
    text = "\x1f".join("" if value is None else str(value) for value in (patent_id, *key_values))
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def as_text(value: Any) -> str | None:
    """Codes such as ``seic_no`` 1.1 or ``award_session`` 2018 arrive as numbers or strings: keep text."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, float):
        return format(value, ".15g")
    return str(value)


def as_int(value: Any) -> int | None:
    """Dates such as 20211207 may arrive as numbers or strings; anything else is an error, not a null."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"expected a YYYYMMDD date, got {value!r}")
    if isinstance(value, int):
        return value
    text = str(value).strip().replace("-", "")
    if text.endswith(".0"):
        text = text[:-2]
    if not text.isdigit():
        raise ValueError(f"expected a YYYYMMDD date, got {value!r}")
    return int(text)


def _items(payload: Any) -> Iterator[Mapping[str, Any]]:
    for item in payload or ():
        if isinstance(item, Mapping):
            yield item


def _seic_records(payload: Any) -> Iterator[Record]:
    for item in _items(payload):
        level1, level2 = item.get("seic_lv1") or {}, item.get("seic_lv2") or {}
        yield {
            "seic_lv1_no": as_text(level1.get("seic_no")),
            "seic_lv1_desc": as_text(level1.get("seic_desc")),
            "seic_lv2_no": as_text(level2.get("seic_no")),
            "seic_lv2_desc": as_text(level2.get("seic_desc")),
        }


def _text_records(names: tuple[str, ...], dates: tuple[str, ...] = ()) -> Callable[[Any], Iterator[Record]]:
    def to_records(payload: Any) -> Iterator[Record]:
        for item in _items(payload):
            record: Record = {name: as_text(item.get(name)) for name in names}
            record.update((name, as_int(item.get(name))) for name in dates)
            yield record

    return to_records


_INPADOC_FIELDS = ("event_code", "event_desc", "ref_country_code")
_OFFICIAL_FIELDS = ("event_vol", "event_code", "event_desc", "event_others", "event_legal_status")


def _legal_records(payload: Any) -> Iterator[Record]:
    legal = payload if isinstance(payload, Mapping) else {}
    for source, names in (("inpadoc", _INPADOC_FIELDS), ("official", _OFFICIAL_FIELDS)):
        for record in _text_records(names, ("event_date",))(legal.get(f"{source}_legal_data")):
            yield {"source": source, **record}


def _text_columns(**descriptions: str) -> tuple[Column, ...]:
    """TEXT columns in the order given, each with its description (the docs' table shows it)."""
    return tuple(Column(name, "TEXT", description) for name, description in descriptions.items())


SEIC_CLASSIFICATION = Endpoint(
    code="P022",
    name="seic_classification",
    title="Strategic emerging industry classification",
    path="/high-value-data/seic-classification",
    payload_key="seic_classification",
    params={"lang": ("en", "cn")},
    record_columns=(
        Column("lang", "VARCHAR(8)", "language of the descriptions (en or cn)"),
        *_text_columns(
            seic_lv1_no="SEIC level-1 code, as text (`1`)",
            seic_lv1_desc="SEIC level-1 name",
            seic_lv2_no="SEIC level-2 code, as text (`1.1`, never a float)",
            seic_lv2_desc="SEIC level-2 name",
        ),
    ),
    key_columns=("lang", "seic_lv1_no", "seic_lv2_no"),
    to_records=_seic_records,
)

AWARD = Endpoint(
    code="P032",
    name="award",
    title="Award",
    path="/advanced-patent-data/award-data",
    payload_key="patent_award_data",
    record_columns=_text_columns(
        category="award category",
        award_name="name of the award",
        award_level="level of the award (gold, silver, ...)",
        award_session="award session, as text (`2018`)",
        award_referrer="who nominated the patent",
    ),
    key_columns=("award_name", "award_session", "award_level"),
    to_records=_text_records(("category", "award_name", "award_level", "award_session", "award_referrer")),
)

_CUSTOMS_TEXT = ("record_number", "record_status", "country", "product", "contact", "approval_opinion")
CUSTOMS_RECORD = Endpoint(
    code="P031",
    name="customs_record",
    title="Customs record",
    path="/advanced-patent-data/customs-data",
    payload_key="patent_customs_record_data",
    record_columns=(
        *_text_columns(
            record_number="customs record number",
            record_status="record status (may be Chinese)",
            country="authority code",
            product="protected product (often CJK)",
            contact="contact",
            approval_opinion="approval opinion",
        ),
        Column("start_date", "BIGINT", "YYYYMMDD"),
        Column("end_date", "BIGINT", "YYYYMMDD"),
    ),
    key_columns=("record_number", "country", "start_date"),
    to_records=_text_records(_CUSTOMS_TEXT, ("start_date", "end_date")),
)

LEGAL_INFORMATION = Endpoint(
    code="P026",
    name="legal_information",
    title="Legal information",
    path="/advanced-patent-data/legal-data",
    payload_key="patsnap_legal_data",
    record_columns=(
        Column("source", "VARCHAR(16)", "inpadoc or official"),
        Column("event_date", "BIGINT", "YYYYMMDD"),
        *_text_columns(
            event_code="event code, as text (`B350`, `1.3`)",
            event_desc="event description",
            ref_country_code="reference authority code (inpadoc rows only)",
            event_vol="volume number (official rows only)",
            event_others="other legal status information (official, CN only)",
            event_legal_status="legal status (official, CN only)",
        ),
    ),
    key_columns=("source", "event_date", "event_code", "event_desc", "event_vol", "ref_country_code"),
    to_records=_legal_records,
)

ENDPOINTS: dict[str, Endpoint] = {
    endpoint.code: endpoint for endpoint in (SEIC_CLASSIFICATION, AWARD, CUSTOMS_RECORD, LEGAL_INFORMATION)
}
