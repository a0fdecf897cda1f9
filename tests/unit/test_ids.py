"""Id validation: what text and lists of ids are accepted, and how bad values are named."""

from __future__ import annotations

import pytest

from airflow_provider_patsnap.ids import InvalidPatentIdsError, chunked, normalise_ids


@pytest.mark.parametrize(
    "given, expected",
    [
        ("CN1A\nCN2A\n", ["CN1A", "CN2A"]),  # a file's lines
        ("CN1A, CN2A,", ["CN1A", "CN2A"]),  # a trailing comma from a template
        (["CN2A", "CN1A", "CN2A"], ["CN2A", "CN1A"]),  # first-seen order, once each
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
    ],
)
def test_rejected_input_names_the_bad_value(given: object, named: str) -> None:
    with pytest.raises(InvalidPatentIdsError) as raised:
        normalise_ids(given)
    assert named in str(raised.value)


def test_chunks_never_exceed_100() -> None:
    sizes = [len(chunk) for chunk in chunked([str(i) for i in range(250)])]
    assert sizes == [100, 100, 50]
    with pytest.raises(ValueError, match="between 1 and 100"):
        list(chunked(["a"], 101))
