"""What sync and history decide from a batch, without a database: scopes, row hashes, versions."""

from __future__ import annotations

from airflow_provider_patsnap.endpoints import AWARD
from airflow_provider_patsnap.sinks.base import FetchedBatch, FetchedPatent
from airflow_provider_patsnap.sinks.dialects import ValueList
from airflow_provider_patsnap.sinks.sql_modes import ModeWriter, scope_of

FETCHED_AT = "2026-12-01T00:00:00+00:00"


def test_a_scope_finds_a_patent_by_every_spelling_its_rows_may_hold() -> None:
    batch = FetchedBatch(
        [
            FetchedPatent("cn1a", "CN1A", "CN1A", 2, False),  # echoed in the vendor's spelling
            FetchedPatent("cn2a", "CN2A", None, 0, False),  # no data now: spelled as the state remembers
            FetchedPatent("CN3A", "CN3A", "CN3A", 1, True),  # some data rejected: nothing of it removed
        ],
        FETCHED_AT,
    )
    scope = scope_of(batch, {"CN2A": "Cn2A"})
    assert scope.patent_of == {"cn1a": "CN1A", "CN1A": "CN1A", "cn2a": "CN2A", "Cn2A": "CN2A", "CN3A": "CN3A"}
    assert scope.removable == {"CN1A", "CN2A"} and scope.empty == {"CN2A"}
    assert scope.keeping({"CN1A"}).removable == {"CN2A"}


def test_a_row_hash_ignores_the_key_and_the_fetch_time_only() -> None:
    writer = ModeWriter("t", "pn", AWARD.column_names, ValueList("?", arrays=False))
    patent = {"pn": "CN1A", "patent_id": "p1", "patent_award_data": [{"award_name": "Gold", "category": "x"}]}
    [row] = AWARD.map_patent(patent, FETCHED_AT).rows
    [later] = AWARD.map_patent(patent, "2027-01-01T00:00:00+00:00").rows
    patent["patent_award_data"][0]["category"] = "y"
    [changed] = AWARD.map_patent(patent, FETCHED_AT).rows
    assert writer.row_hash(row) == writer.row_hash(later)
    assert writer.row_hash(row) != writer.row_hash(changed)
