"""Vendor payloads to column values: text and dates kept exactly, shapes checked, records built.

The per-endpoint pieces :data:`~airflow_provider_patsnap.endpoints.ENDPOINTS` is made of. Values are
converted on the hot path of every row, so the common case (plain text, a YYYYMMDD number) is decided
before any general conversion runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

Record = dict[str, Any]
#: A record's column values, in the order of its endpoint's ``record_columns``.
Values = Sequence[Any]
ValuesOf = Callable[[Mapping[str, Any], Mapping[str, Any]], Values]


class PayloadShapeError(ValueError):
    """A payload the mapping does not understand (an object where a list belongs, ...)."""


def raw_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True, default=repr)


def id_text(value: Any) -> str | None:
    """An id that is not text or a number cannot identify anything: treat it as absent."""
    if type(value) is str and value.isascii() and "\x00" not in value:  # the usual id, quickly
        return value
    return as_text(value) if isinstance(value, str | int | float) else None


# NUL cannot be stored in PostgreSQL text; a lone surrogate cannot be encoded as UTF-8 anywhere.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_unstorable = _UNSTORABLE.search


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
        if value.isascii() and "\x00" not in value:  # nothing to clean: the common case, quickly
            return value
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
    if (  # already YYYYMMDD: the common case, quickly
        type(value) is int
        and 10000101 <= value <= 99991231
        and 1 <= value // 100 % 100 <= 12
        and 1 <= value % 100 <= 31
    ):
        return value
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


def list_of_objects(payload: Any, what: str = "a list of objects") -> Iterator[Mapping[str, Any]]:
    if payload is None:
        return
    if not isinstance(payload, list):
        raise PayloadShapeError(f"expected {what}, got {_shape(payload)}")
    for item in payload:
        if type(item) is not dict and not isinstance(item, Mapping):  # parsed JSON: always a dict
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


def seic_values(item: Mapping[str, Any], patent: Mapping[str, Any]) -> Values:
    level1, level2 = _object(item.get("seic_lv1"), "seic_lv1"), _object(item.get("seic_lv2"), "seic_lv2")
    return (
        field_text(patent, "lang"),  # a field of the patent, not of each classification
        field_text(level1, "seic_no", "seic_lv1_no"),
        field_text(level1, "seic_desc", "seic_lv1_desc"),
        field_text(level2, "seic_no", "seic_lv2_no"),
        field_text(level2, "seic_desc", "seic_lv2_desc"),
    )


def field_text(item: Mapping[str, Any], name: str, column: str | None = None) -> str | None:
    value = item.get(name)
    if value is None:
        return None
    try:
        return as_text(value)
    except ValueError as err:
        raise ValueError(f"{column or name}: {err}") from None


def _stored_text(value: Any, name: str) -> str | None:
    if type(value) is str:
        return clean_text(value)
    try:
        return as_text(value)
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from None


def _date(item: Mapping[str, Any], name: str) -> int | None:
    try:
        return as_date(item.get(name))
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from None


def text_values(names: tuple[str, ...], dates: tuple[str, ...] = ()) -> ValuesOf:
    """A record's ``names`` as text, then its ``dates`` as YYYYMMDD integers, in that order."""

    def to_values(item: Mapping[str, Any], patent: Mapping[str, Any]) -> Values:
        # Text without a NUL or a lone surrogate, and None, are kept as they are without a call: most
        # values are (a quick isascii() spares ASCII the search).
        values: list[str | int | None] = [
            value
            if value is None
            or (
                type(value) is str and "\x00" not in value and (value.isascii() or _unstorable(value) is None)
            )
            else _stored_text(value, name)
            for name, value in zip(names, map(item.get, names), strict=True)
        ]
        values += [_date(item, name) for name in dates]
        return values

    return to_values


_LEGAL_SOURCES = ("inpadoc", "official")
#: Every text field of either source: a field one source lacks is simply None in its rows.
LEGAL_TEXT_FIELDS = (
    "event_code",
    "event_desc",
    "ref_country_code",
    "event_vol",
    "event_others",
    "event_legal_status",
)
_legal_texts = text_values(LEGAL_TEXT_FIELDS)


def legal_items(payload: Any) -> Iterator[Mapping[str, Any]]:
    if payload is None:
        return
    if not isinstance(payload, Mapping):
        raise PayloadShapeError(
            f"expected an object with inpadoc_legal_data and official_legal_data, got {_shape(payload)}"
        )
    for source in _LEGAL_SOURCES:
        for item in list_of_objects(payload.get(f"{source}_legal_data"), f"{source}_legal_data as a list"):
            if type(item) is dict:
                item["source"] = source  # the parsed answer is ours alone: tag it instead of copying it
                yield item
            else:
                yield {**item, "source": source}


def legal_values(item: Mapping[str, Any], patent: Mapping[str, Any]) -> Values:
    """``source``, ``event_date``, then :data:`LEGAL_TEXT_FIELDS`."""
    return [item["source"], _date(item, "event_date"), *_legal_texts(item, patent)]
