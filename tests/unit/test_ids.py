"""Id validation: what text and lists of ids are accepted, and how bad values are named."""

from __future__ import annotations

import pytest

from airflow_provider_patsnap.exceptions import InvalidPatentIdsError
from airflow_provider_patsnap.ids import BatchResult, PatentIds, match_key, match_patents, normalise_ids


@pytest.mark.parametrize(
    "given, expected",
    [
        ("CN1A\nCN2A\n", ["CN1A", "CN2A"]),  # a file's lines
        ("CN1A, CN2A,", ["CN1A", "CN2A"]),  # a trailing comma from a template
        (["CN2A", "CN1A", "CN2A"], ["CN2A", "CN1A"]),  # first-seen order, once each
        (["cn1a", "CN1A", "CN2A"], ["cn1a", "CN2A"]),  # PatSnap matches case-insensitively: sent once
    ],
)
def test_accepted_input(given: object, expected: list[str]) -> None:
    assert normalise_ids(given) == expected


@pytest.mark.parametrize(
    "given, named",
    [
        ("[CN1A, CN2A]", "'[CN1A'"),  # a list rendered as text without quotes
        (["CN1A", "'CN2A'"], "\"'CN2A'\""),
        (["CN1A", ""], "'' is blank"),
        (" , ", "no patent_number values"),
        ({"patents": ["CN1A"], "count": 1}, "got a dict with keys ['patents', 'count']"),
    ],
)
def test_rejected_input_names_the_bad_value(given: object, named: str) -> None:
    with pytest.raises(InvalidPatentIdsError) as raised:
        normalise_ids(given)
    assert named in str(raised.value)


def test_batches_never_exceed_100() -> None:
    sizes = [len(batch) for batch in PatentIds.of([str(i) for i in range(250)]).batches()]
    assert sizes == [100, 100, 50]
    for size in (101, 0, True, 2.5):  # refused when asked for, not when the first batch is taken
        with pytest.raises(ValueError, match=r"batch_size must be a whole number >= 1 and <= 100"):
            PatentIds.of(["a"]).batches(size)


def test_each_id_travels_with_its_match_key() -> None:
    ids = PatentIds.of(["cn-1a", "CN2A", " cn3 a "][:2])
    assert (ids.ids, ids.keys) == (["cn-1a", "CN2A"], ["CN-1A", "CN2A"])
    assert ids.without(frozenset({"CN-1A"})) == PatentIds(["CN2A"], ["CN2A"])


def test_match_patents_sorts_out_what_came_back() -> None:
    first, again = {"pn": "cn1a", "n": 1}, {"pn": "CN1A", "n": 2}
    no_pn, blank_pn, odd_pn = {"patent_id": "x"}, {"pn": " "}, {"pn": ["CN2A"]}
    stranger = {"pn": "US9B2"}
    requested = PatentIds.of(["CN1A", "CN2A", "CN3A"])
    answer = [first, no_pn, again, stranger, blank_pn, odd_pn, "text"]
    match = match_patents(requested, answer, "patent_number")
    assert match.matched == [first]  # the echo in another case matches; the first object is kept
    assert match.matched_at == [0]
    assert match.duplicates == 1
    assert BatchResult(requested, answer, match).missing == ["CN2A", "CN3A"]
    assert match.unmatched == [no_pn, blank_pn, odd_pn, "text"]
    assert match.unrequested == [stranger]


def test_match_patents_by_patent_id_ignores_pn() -> None:
    patent = {"pn": "CN9A", "patent_id": "abc-1"}
    requested = PatentIds.of(["abc-1", "abc-2"], "patent_id")
    match = match_patents(requested, [patent, {"pn": "CN8A"}], "patent_id")
    missing = BatchResult(requested, [], match).missing
    assert (match.matched, missing, match.unmatched) == ([patent], ["abc-2"], [{"pn": "CN8A"}])


def test_match_key_keeps_exactly_letters_digits_and_hyphens_of_every_character() -> None:
    """The regex form of match_key is the character-by-character rule, for all of Unicode."""

    def by_character(value: str) -> str:
        return "".join(ch for ch in value.upper() if ch.isalnum() or ch == "-")

    for start in range(0, 0x110000, 4096):
        text = "".join(chr(code) for code in range(start, start + 4096))
        assert match_key(text) == by_character(text), f"characters from U+{start:04X}"
    assert match_key(" cn-110_650.438 a ") == "CN-110650438A"
    assert match_key(None) == match_key("") == ""


def test_match_key_short_cut_for_plain_ids_follows_the_character_rule() -> None:
    """Ids with nothing to remove skip the regex; every cased code point (below U+3000, the Latin
    ligatures, the Deseret letters), alone or inside an id, gives the character-by-character answer:
    ǰ upper-cases to J plus a combining mark, which is removed."""

    def by_character(value: str) -> str:
        return "".join(ch for ch in value.upper() if ch.isalnum() or ch == "-")

    for code in (*range(0x3000), *range(0xFB00, 0xFB50), *range(0x10400, 0x10450)):
        if 0xD800 <= code <= 0xDFFF:
            continue
        for value in (chr(code), f"CN-1{chr(code)}2A"):
            assert match_key(value) == by_character(value), f"U+{code:04X}"


def test_every_ascii_character_is_judged_by_the_character_rule() -> None:
    """The quick regex for plain ASCII ids accepts exactly what the character-by-character rule does."""
    for code in range(128):
        character = chr(code)
        bad = character.isspace() or character in ",[]'\"" or not character.isprintable()
        value = f"CN1{character}2A"
        if bad:
            with pytest.raises(InvalidPatentIdsError):
                normalise_ids([value])
        else:
            assert normalise_ids([value]) == [value], repr(character)
