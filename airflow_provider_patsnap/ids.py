"""Patent ids and numbers: validated before anything goes on the wire, matched when answers come back."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from airflow_provider_patsnap.endpoints import ID_KINDS, MAX_BATCH, MAX_ID_LENGTH, IdKind
from airflow_provider_patsnap.exceptions import PatsnapInputError

_SHOWN = 5
_SEPARATORS = frozenset(",[]'\"")  # never in an id: a sign of a list rendered as text
# Printable ASCII without space or a separator: an id that needs no character-by-character look
_PLAIN_ASCII_ID = re.compile(r"[!#-&(-+\--Z\\^-~]+")


class InvalidPatentIdsError(PatsnapInputError):
    """Input ids that PatSnap would reject or that would break a comma-separated batch."""


def _problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"{value!r} is a {type(value).__name__}, not a string"
    if not value.strip():
        return f"{value!r} is blank"
    text = value.strip()
    if len(text) > MAX_ID_LENGTH:
        return f"{text[:20]!r}... is {len(text)} characters (at most {MAX_ID_LENGTH})"
    if _PLAIN_ASCII_ID.fullmatch(text) is None and any(  # the regex is the same rule for ASCII
        ch.isspace() or ch in _SEPARATORS or not ch.isprintable() for ch in text
    ):
        return f"{text!r} contains whitespace, a comma, a bracket, a quote or a control character"
    return None


def _pieces(values: Any) -> Iterator[Any]:
    if isinstance(values, Mapping):
        # Iterating a dict gives its keys: an upstream task that returned a dict would send field names.
        raise InvalidPatentIdsError(
            f"patent ids must be a list or a comma-separated string, got a dict with keys "
            f"{list(values)[:5]!r}: pick the list out of it (for example with a @task or .map)"
        )
    if isinstance(values, str):
        # Text (a template, a file's lines) may end with a newline or a comma: skip empty pieces.
        yield from (piece for piece in values.replace("\n", ",").split(",") if piece.strip())
    elif isinstance(values, Iterable):
        yield from values
    else:
        raise InvalidPatentIdsError(
            f"patent ids must be a list or a comma-separated string, got {type(values).__name__}"
        )


def normalise_ids(values: Any, kind: IdKind = "patent_number") -> list[str]:
    """Return the ids stripped and de-duplicated in first-seen order, or raise naming every bad value.

    Accepts a comma- or newline-separated string or any iterable of strings (not a dict). Ids that
    PatSnap treats as the same (``cn1a`` and ``CN1A``: see :func:`match_key`) are sent once, as first seen.
    """
    if kind not in ID_KINDS:
        raise InvalidPatentIdsError(f"id kind must be one of {ID_KINDS}, got {kind!r}")
    seen: dict[str, str] = {}
    problems: list[str] = []
    for position, value in enumerate(_pieces(values)):
        problem = _problem(value)
        if problem:
            problems.append(f"#{position}: {problem}")
        else:
            seen.setdefault(match_key(value), value.strip())
    if problems:
        shown = "; ".join(problems[:_SHOWN])
        more = f" (and {len(problems) - _SHOWN} more)" if len(problems) > _SHOWN else ""
        raise InvalidPatentIdsError(f"{len(problems)} invalid {kind} value(s): {shown}{more}")
    if not seen:
        raise InvalidPatentIdsError(f"no {kind} values given: {values!r}")
    return list(seen.values())


def chunked(ids: list[str], size: int = MAX_BATCH) -> Iterator[list[str]]:
    if not 1 <= size <= MAX_BATCH:
        raise ValueError(f"batch size must be between 1 and {MAX_BATCH}, got {size}")
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


# ``\w`` is exactly ``str.isalnum()`` plus the underscore, for every character
_NOT_KEY = re.compile(r"[^\w-]|_")


def match_key(value: str | None) -> str:
    """PatSnap may echo a number in another case or spacing: compare on letters, digits and ``-`` only."""
    if not value:
        return ""
    upper = value.upper()
    if upper.replace("-", "").isalnum():  # the usual case, nothing to remove: skip the regex
        # An id that already is its key is returned itself: a million ids keyed by themselves hold no copy.
        return value if upper == value else upper
    return _NOT_KEY.sub("", upper)


class PatentMatch(NamedTuple):
    """The per-patent objects of one batch, sorted out against the ids that were asked for."""

    matched: list[Mapping[str, Any]]  # one object per requested id that came back, first one kept
    matched_requested: list[str]  # the requested id each of ``matched`` answers, in the same order
    missing: list[str]  # requested ids no object answered
    unmatched: list[Any]  # objects without a usable id: they cannot be told apart, so never written
    unrequested: list[Mapping[str, Any]]  # objects for ids nobody asked for
    duplicates: int  # further objects for an id already matched


def match_patents(requested: Sequence[str], patents: Iterable[Any], id_kind: IdKind) -> PatentMatch:
    """Match the objects PatSnap returned to the requested ids on ``pn`` or ``patent_id``.

    Comparison uses :func:`match_key`, so an id echoed in another case still matches.
    """
    field_name = "patent_id" if id_kind == "patent_id" else "pn"
    requested_keys = [match_key(value) for value in requested]
    wanted: dict[str, str] = {}
    for asked, key in zip(requested, requested_keys, strict=True):
        wanted.setdefault(key, asked)
    found: dict[str, Mapping[str, Any]] = {}
    unmatched: list[Any] = []
    unrequested: list[Mapping[str, Any]] = []
    duplicates = 0
    for patent in patents:
        echoed = patent.get(field_name) if isinstance(patent, Mapping) else None
        key = match_key(echoed) if isinstance(echoed, str) else ""
        if not key:
            unmatched.append(patent)
        elif key not in wanted:
            unrequested.append(patent)
        elif key in found:
            duplicates += 1
        else:
            found[key] = patent
    missing = [value for value, key in zip(requested, requested_keys, strict=True) if key not in found]
    matched_requested = [wanted[key] for key in found]
    return PatentMatch(list(found.values()), matched_requested, missing, unmatched, unrequested, duplicates)


@dataclass
class BatchResult:
    """One chunk of a batch lookup: the per-patent objects that came back and the ids that did not."""

    requested: list[str]
    patents: list[Any]  # every object returned: what PatSnap bills
    missing: list[str]
    match: PatentMatch  # which objects answer which requested id (and which answer none)
