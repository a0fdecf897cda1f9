"""Patent ids and numbers: validated before anything goes on the wire, matched when answers come back.

An id is validated once and its match key (:func:`match_key`) computed once, where it enters; from then on
it travels with that key in a :class:`PatentIds`, and every later step (matching the vendor's answer, the
state table, freshness) reads the key instead of computing it again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from airflow_provider_patsnap.arguments import whole_number
from airflow_provider_patsnap.endpoints import ID_KINDS, MAX_BATCH, MAX_ID_LENGTH, IdKind, patent_field
from airflow_provider_patsnap.exceptions import InvalidPatentIdsError

_SHOWN = 5
_SEPARATORS = frozenset(",[]'\"")  # never in an id: a sign of a list rendered as text
# Printable ASCII without space or a separator: an id that needs no character-by-character look
_PLAIN_ASCII_ID = re.compile(r"[!#-&(-+\--Z\\^-~]+")


def id_problem(value: Any) -> str | None:
    """Why ``value`` cannot be sent as an id, or None when it can."""
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


def split_ids(values: Any) -> Iterator[Any]:
    """The single values of a list, or of comma- or newline-separated text (empty pieces skipped)."""
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


@dataclass(frozen=True, slots=True)
class PatentIds:
    """Validated ids, stripped, de-duplicated on their match keys, each beside its key."""

    ids: list[str]
    keys: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __getitem__(self, part: slice) -> PatentIds:
        return PatentIds(self.ids[part], self.keys[part])

    def without(self, skipped: frozenset[str]) -> PatentIds:
        """These ids less those whose key is in ``skipped``."""
        kept = [position for position, key in enumerate(self.keys) if key not in skipped]
        return PatentIds([self.ids[i] for i in kept], [self.keys[i] for i in kept])

    @classmethod
    def of(cls, values: Any, kind: IdKind = "patent_number") -> PatentIds:
        """Validate ``values`` (a list, or comma- or newline-separated text; not a dict): the ids in
        first-seen order, ids PatSnap treats as the same (``cn1a`` and ``CN1A``) once; or raise naming
        every bad value."""
        if kind not in ID_KINDS:
            raise InvalidPatentIdsError(f"id kind must be one of {ID_KINDS}, got {kind!r}")
        seen: dict[str, str] = {}
        problems: list[str] = []
        for position, value in enumerate(split_ids(values)):
            problem = id_problem(value)
            if problem:
                problems.append(f"#{position}: {problem}")
            else:
                text = value.strip()
                seen.setdefault(match_key(text), text)
        if problems:
            shown = "; ".join(problems[:_SHOWN])
            more = f" (and {len(problems) - _SHOWN} more)" if len(problems) > _SHOWN else ""
            raise InvalidPatentIdsError(f"{len(problems)} invalid {kind} value(s): {shown}{more}")
        if not seen:
            raise InvalidPatentIdsError(f"no {kind} values given: {values!r}")
        return cls(list(seen.values()), list(seen))

    def batches(self, size: int = MAX_BATCH) -> Iterator[PatentIds]:
        """Consecutive batches of at most ``size`` ids (at most 100, PatSnap's limit); ``size`` is
        checked now, not when the first batch is taken."""
        whole_number("batch_size", size, minimum=1, maximum=MAX_BATCH)
        return (self[start : start + size] for start in range(0, len(self.ids), size))


def normalise_ids(values: Any, kind: IdKind = "patent_number") -> list[str]:
    """The ids of ``values``, validated and de-duplicated (:meth:`PatentIds.of`)."""
    return PatentIds.of(values, kind).ids


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
    """The per-patent objects of one batch, sorted out against the ids that were asked for. Requested
    ids are named by their position in the batch (:class:`PatentIds`), so each keeps its key."""

    matched: list[Mapping[str, Any]]  # one object per requested id that came back, the first one kept
    matched_at: list[int]  # the position of the requested id each of ``matched`` answers
    missing_at: list[int]  # positions of the requested ids no object answered
    unmatched: list[Any]  # objects without a usable id: they cannot be told apart, so never written
    unrequested: list[Mapping[str, Any]]  # objects for ids nobody asked for
    duplicates: int  # further objects for an id already matched


def match_patents(requested: PatentIds, patents: Iterable[Any], id_kind: IdKind) -> PatentMatch:
    """Match the objects PatSnap returned to the requested ids on ``pn`` or ``patent_id``, by
    :func:`match_key`, so an id echoed in another case still matches."""
    field_name = patent_field(id_kind)
    wanted = {key: position for position, key in enumerate(requested.keys)}
    found: dict[int, Mapping[str, Any]] = {}
    unmatched: list[Any] = []
    unrequested: list[Mapping[str, Any]] = []
    duplicates = 0
    for patent in patents:
        echoed = patent.get(field_name) if isinstance(patent, Mapping) else None
        key = match_key(echoed) if isinstance(echoed, str) else ""
        position = wanted.get(key) if key else None
        if not key:
            unmatched.append(patent)
        elif position is None:
            unrequested.append(patent)
        elif position in found:
            duplicates += 1
        else:
            found[position] = patent
    missing_at = [position for position in range(len(requested)) if position not in found]
    return PatentMatch(list(found.values()), list(found), missing_at, unmatched, unrequested, duplicates)


class BatchResult(NamedTuple):
    """One batch of a lookup: the ids asked for, every object PatSnap returned (what it bills) and which
    object answers which id."""

    requested: PatentIds
    patents: list[Any]
    match: PatentMatch

    @property
    def missing(self) -> list[str]:
        """The requested ids no object answered."""
        return [self.requested.ids[position] for position in self.match.missing_at]
