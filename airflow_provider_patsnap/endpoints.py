"""The declarative table of PatSnap endpoints.

One :class:`Endpoint` per data API: where it lives, which parameters it takes, where its payload sits in
a per-patent object, how that payload becomes flat rows and which columns identify a row. Operators,
SQL tables, docs and tests are all driven from :data:`ENDPOINTS`; adding an API is one entry here and a
few lines of operator class.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, NamedTuple

IdKind = Literal["patent_id", "patent_number"]
ID_KINDS: tuple[IdKind, ...] = ("patent_id", "patent_number")
MAX_BATCH = 100
MAX_ID_LENGTH = 64

Record = dict[str, Any]


class PayloadShapeError(ValueError):
    """A payload the mapping does not understand (an object where a list belongs, ...)."""


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str = "TEXT"
    description: str = ""


# Identifiers are TEXT: the vendor may echo ids longer than the 64 characters the input accepts.
COMMON_HEAD = (
    Column("record_key", "VARCHAR(40)", "sha1 of patent_id and the key columns; the table's primary key"),
    Column("pn", "TEXT", "patent number"),
    Column("patent_id", "TEXT", "PatSnap patent id"),
)
COMMON_TAIL = (Column("fetched_at", "VARCHAR(32)", "UTC time the row was fetched, ISO 8601"),)


class Reject(NamedTuple):
    """Vendor data that could not become a row: kept with the reason, never silently dropped."""

    endpoint: str
    pn: str | None
    patent_id: str | None
    reason: str
    raw_value: str  # JSON as received, ASCII-escaped so NULs and lone surrogates survive any store


class PatentRows(NamedTuple):
    rows: list[Record]
    rejects: list[Reject]


def raw_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True, default=repr)


@dataclass(frozen=True)
class Endpoint:
    """One PatSnap data API and the shape of the rows it yields.

    ``to_items`` splits a payload into vendor records (raising :class:`PayloadShapeError` on a shape it
    does not understand); ``to_record`` turns one into column values (raising ``ValueError`` on a value
    it cannot store), so one bad record is rejected on its own.
    """

    code: str
    name: str
    title: str
    path: str
    payload_key: str
    record_columns: tuple[Column, ...]
    key_columns: tuple[str, ...]
    to_items: Callable[[Any], Iterator[Mapping[str, Any]]]
    to_record: Callable[[Mapping[str, Any]], Record]
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

    def map_patent(self, patent: Mapping[str, Any], fetched_at: str) -> PatentRows:
        """Turn one per-patent object from ``data`` into flat rows, and what cannot be into rejects."""
        pn, patent_id = _id_text(patent.get("pn")), _id_text(patent.get("patent_id"))
        payload = patent.get(self.payload_key)
        try:
            items = list(self.to_items(payload))
        except PayloadShapeError as err:
            reason = f"{self.code} {self.payload_key} of {pn or patent_id!r}: {err}"
            return PatentRows([], [Reject(self.code, pn, patent_id, reason, raw_json(payload))])
        # Without a patent_id the number keeps patents apart: they must never share record keys.
        identity = patent_id if patent_id is not None else f"pn:{pn}"
        rows: list[Record] = []
        rejects: list[Reject] = []
        for item in items:
            try:
                record = self.to_record(item)
                # Patent-level fields (P022's ``lang``) fill columns the record itself does not carry.
                for name in self._record_column_names:
                    if name not in record:
                        record[name] = _text(patent, name)
            except ValueError as err:
                reason = f"{self.code} record of {pn or patent_id!r}: {err}"
                rejects.append(Reject(self.code, pn, patent_id, reason, raw_json(item)))
                continue
            row: Record = {"record_key": record_key(identity, [record.get(k) for k in self.key_columns])}
            row["pn"], row["patent_id"] = pn, patent_id
            for name in self._record_column_names:
                row[name] = record.get(name)
            row["fetched_at"] = fetched_at
            rows.append(row)
        return PatentRows(rows, rejects)

    @cached_property
    def _record_column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.record_columns)

    def rows(self, patent: Mapping[str, Any], fetched_at: str) -> Iterator[Record]:
        """The rows of one per-patent object; ``ValueError`` naming the first reject if there is one."""
        mapped = self.map_patent(patent, fetched_at)
        if mapped.rejects:
            raise ValueError(mapped.rejects[0].reason)
        yield from mapped.rows


def _id_text(value: Any) -> str | None:
    """An id that is not text or a number cannot identify anything: treat it as absent."""
    return as_text(value) if isinstance(value, str | int | float) else None


def record_key(patent_id: str | None, key_values: list[Any]) -> str:
    text = "\x1f".join("" if value is None else str(value) for value in (patent_id, *key_values))
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


# NUL cannot be stored in PostgreSQL text; a lone surrogate cannot be encoded as UTF-8 anywhere.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Drop NULs and replace lone surrogates with U+FFFD; text without them is returned as is."""
    if _UNSTORABLE.search(text) is None:
        return text
    return _UNSTORABLE.sub(lambda match: "" if match.group() == "\x00" else "\ufffd", text)


def as_text(value: Any) -> str | None:
    """Codes such as ``seic_no`` 1.1 or ``award_session`` 2018 arrive as numbers or strings: keep text."""
    if value is None:
        return None
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format(value, ".15g")
    if isinstance(value, int):
        return str(value)
    raise ValueError(f"expected text, got a {type(value).__name__}: {raw_json(value)[:100]}")


_SEPARATED_DATE = re.compile(r"(\d{4})[-/. ](\d{1,2})[-/. ](\d{1,2})")


def as_date(value: Any) -> int | None:
    """A YYYYMMDD integer from 20211207, "20211207", "2021-12-07" or "2021/12/07"; else ``ValueError``."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"expected a YYYYMMDD date, got {value!r}")
    text = str(value).strip()
    if text.endswith(".0"):  # floats are parsed as text: 20211207.0
        text = text[:-2]
    separated = _SEPARATED_DATE.fullmatch(text)
    if separated:
        year, month, day = separated.groups()
        text = f"{year}{int(month):02d}{int(day):02d}"
    if not (len(text) == 8 and text.isascii() and text.isdigit()) or not (
        1 <= int(text[4:6]) <= 12 and 1 <= int(text[6:]) <= 31
    ):
        raise ValueError(f"expected a YYYYMMDD date, got {value!r}")
    return int(text)


def _list_of_objects(payload: Any, what: str = "a list of objects") -> Iterator[Mapping[str, Any]]:
    if payload is None:
        return
    if not isinstance(payload, list):
        raise PayloadShapeError(f"expected {what}, got {_shape(payload)}")
    for item in payload:
        if not isinstance(item, Mapping):
            raise PayloadShapeError(f"expected {what}, got a list holding {_shape(item)}")
        yield item


def _shape(value: Any) -> str:
    kinds: dict[type, str] = {dict: "an object", list: "a list", str: "a string"}
    kind = kinds.get(type(value), type(value).__name__)
    return f"{kind} {raw_json(value)[:80]}"


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected an object, got {_shape(value)}")
    return value


def _seic_record(item: Mapping[str, Any]) -> Record:
    level1, level2 = _object(item.get("seic_lv1"), "seic_lv1"), _object(item.get("seic_lv2"), "seic_lv2")
    return {
        "seic_lv1_no": _text(level1, "seic_no", "seic_lv1_no"),
        "seic_lv1_desc": _text(level1, "seic_desc", "seic_lv1_desc"),
        "seic_lv2_no": _text(level2, "seic_no", "seic_lv2_no"),
        "seic_lv2_desc": _text(level2, "seic_desc", "seic_lv2_desc"),
    }


def _text(item: Mapping[str, Any], name: str, column: str | None = None) -> str | None:
    try:
        return as_text(item.get(name))
    except ValueError as err:
        raise ValueError(f"{column or name}: {err}") from None


def _date(item: Mapping[str, Any], name: str) -> int | None:
    try:
        return as_date(item.get(name))
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from None


def _text_record(
    names: tuple[str, ...], dates: tuple[str, ...] = ()
) -> Callable[[Mapping[str, Any]], Record]:
    def to_record(item: Mapping[str, Any]) -> Record:
        record: Record = {name: _text(item, name) for name in names}
        record.update((name, _date(item, name)) for name in dates)
        return record

    return to_record


_INPADOC_FIELDS = ("event_code", "event_desc", "ref_country_code")
_OFFICIAL_FIELDS = ("event_vol", "event_code", "event_desc", "event_others", "event_legal_status")
_LEGAL_SOURCES = (("inpadoc", _INPADOC_FIELDS), ("official", _OFFICIAL_FIELDS))


def _legal_items(payload: Any) -> Iterator[Mapping[str, Any]]:
    if payload is None:
        return
    if not isinstance(payload, Mapping):
        raise PayloadShapeError(
            f"expected an object with inpadoc_legal_data and official_legal_data, got {_shape(payload)}"
        )
    for source, _ in _LEGAL_SOURCES:
        for item in _list_of_objects(payload.get(f"{source}_legal_data"), f"{source}_legal_data as a list"):
            yield {**item, "source": source}


def _legal_record(item: Mapping[str, Any]) -> Record:
    source = item["source"]
    names = dict(_LEGAL_SOURCES)[source]
    return {"source": source, **_text_record(names, ("event_date",))(item)}


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
        Column("lang", "TEXT", "language of the descriptions (en or cn)"),
        *_text_columns(
            seic_lv1_no="SEIC level-1 code, as text (`1`)",
            seic_lv1_desc="SEIC level-1 name",
            seic_lv2_no="SEIC level-2 code, as text (`1.1`, never a float)",
            seic_lv2_desc="SEIC level-2 name",
        ),
    ),
    key_columns=("lang", "seic_lv1_no", "seic_lv2_no"),
    to_items=_list_of_objects,
    to_record=_seic_record,
)

_AWARD_FIELDS = ("category", "award_name", "award_level", "award_session", "award_referrer")
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
    to_items=_list_of_objects,
    to_record=_text_record(_AWARD_FIELDS),
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
    to_items=_list_of_objects,
    to_record=_text_record(_CUSTOMS_TEXT, ("start_date", "end_date")),
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
    to_items=_legal_items,
    to_record=_legal_record,
)

ENDPOINTS: dict[str, Endpoint] = {
    endpoint.code: endpoint for endpoint in (SEIC_CLASSIFICATION, AWARD, CUSTOMS_RECORD, LEGAL_INFORMATION)
}
