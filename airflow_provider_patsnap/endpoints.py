"""The declarative table of PatSnap endpoints.

One :class:`Endpoint` per data API: where it lives, which parameters it takes, where its payload sits in
a per-patent object, how that payload becomes flat rows and which columns identify a row. Operators,
SQL tables, docs and tests are all driven from :data:`ENDPOINTS`; adding an API is one entry here and a
few lines of operator class.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from hashlib import sha1
from operator import itemgetter
from typing import Any, Literal, NamedTuple

from airflow_provider_patsnap.payloads import (
    PayloadShapeError,
    Values,
    ValuesOf,
    id_text,
    legal_items,
    legal_values,
    list_of_objects,
    raw_json,
    seic_values,
    text_values,
)

IdKind = Literal["patent_id", "patent_number"]
ID_KINDS: tuple[IdKind, ...] = ("patent_id", "patent_number")
MAX_BATCH = 100
MAX_ID_LENGTH = 64
#: A row's primary key column: the sha1 of the patent and the record's key columns.
RECORD_KEY = "record_key"
#: One row: its values in :attr:`Endpoint.columns` order (the order every sink writes them in).
Row = tuple[Any, ...]


def patent_field(id_kind: IdKind) -> str:
    """The field of a vendor object, and the column of a row, that names the patent for ``id_kind``."""
    return "patent_id" if id_kind == "patent_id" else "pn"


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str = "TEXT"
    description: str = ""


# Identifiers are TEXT: the vendor may echo ids longer than the 64 characters the input accepts.
COMMON_HEAD = (
    Column(RECORD_KEY, "VARCHAR(40)", "sha1 of patent_id and the key columns; the table's primary key"),
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


class ShapeReject(Reject):
    """A payload of a shape the mapping does not know: quarantined like any reject, and the task fails
    at the end, since every later answer of that shape would be lost the same way."""

    __slots__ = ()


class PatentRows(NamedTuple):
    rows: list[Row]
    rejects: list[Reject]


@dataclass(frozen=True)
class Endpoint:
    """One PatSnap data API and the shape of the rows it yields.

    ``to_items`` splits a payload into vendor records (raising :class:`PayloadShapeError` on a shape it
    does not understand); ``to_values`` turns one record (and the patent object it came in) into its
    values in ``record_columns`` order (raising ``ValueError`` on a value it cannot store), so one bad
    record is rejected on its own. A row is a tuple in :attr:`columns` order, built once: the sinks
    write it as it is.
    """

    code: str
    name: str
    title: str
    path: str
    payload_key: str
    record_columns: tuple[Column, ...]
    key_columns: tuple[str, ...]
    to_items: Callable[[Any], Iterator[Mapping[str, Any]]]
    to_values: ValuesOf
    method: str = "GET"
    params: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def default_table(self) -> str:
        return f"patsnap_{self.name}"

    @property
    def docs_anchor(self) -> str:
        """The anchor of this endpoint's table in docs/destinations.md (as MkDocs and GitHub make it)."""
        heading = f"{self.default_table}: {self.code} {self.title}"
        return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")

    @property
    def columns(self) -> tuple[Column, ...]:
        return (*COMMON_HEAD, *self.record_columns, *COMMON_TAIL)

    @cached_property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    def map_patent(self, patent: Mapping[str, Any], fetched_at: str) -> PatentRows:
        """Turn one per-patent object from ``data`` into rows, and what cannot be into rejects.

        A row's ``record_key`` is the sha1 of the patent (its ``patent_id``, or ``pn:`` and its number
        when it has none) and the key columns' values, joined by ``\x1f``: the same record gets the
        same key on every run, so a rerun replaces it.
        """
        pn, patent_id = id_text(patent.get("pn")), id_text(patent.get("patent_id"))
        payload = patent.get(self.payload_key)
        try:
            items = list(self.to_items(payload))
        except PayloadShapeError as err:
            reason = f"{self.code} {self.payload_key} of {pn or patent_id!r}: {err}"
            return PatentRows([], [ShapeReject(self.code, pn, patent_id, reason, raw_json(payload))])
        # Without a patent_id the number keeps patents apart: they must never share record keys.
        key_prefix = f"{patent_id if patent_id is not None else f'pn:{pn}'}\x1f"
        rows: list[Row] = []
        rejects: list[Reject] = []
        key_text, to_values = self._key_text, self.to_values
        for item in items:
            try:
                values = to_values(item, patent)
            except ValueError as err:
                reason = f"{self.code} record of {pn or patent_id!r}: {err}"
                rejects.append(Reject(self.code, pn, patent_id, reason, raw_json(item)))
                continue
            key = sha1(f"{key_prefix}{key_text(values)}".encode()).hexdigest()
            # One value per column by construction (the endpoint tests check every row's length).
            rows.append((key, pn, patent_id, *values, fetched_at))
        return PatentRows(rows, rejects)

    @cached_property
    def _key_text(self) -> Callable[[Values], str]:
        """The key columns' values, out of a record's values, as text joined by ``\x1f`` (None is "")."""
        names = [column.name for column in self.record_columns]
        get = itemgetter(*(names.index(key) for key in self.key_columns))
        single = len(self.key_columns) == 1

        def key_text(values: Values) -> str:
            keys = (get(values),) if single else get(values)
            return "\x1f".join(
                [value if type(value) is str else "" if value is None else str(value) for value in keys]
            )

        return key_text


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
    to_items=list_of_objects,
    to_values=seic_values,
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
    to_items=list_of_objects,
    to_values=text_values(_AWARD_FIELDS),
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
    to_items=list_of_objects,
    to_values=text_values(_CUSTOMS_TEXT, ("start_date", "end_date")),
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
    to_items=legal_items,
    to_values=legal_values,
)

ENDPOINTS: dict[str, Endpoint] = {
    endpoint.code: endpoint for endpoint in (SEIC_CLASSIFICATION, AWARD, CUSTOMS_RECORD, LEGAL_INFORMATION)
}
