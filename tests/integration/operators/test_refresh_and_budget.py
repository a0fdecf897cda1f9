"""refresh_after, max_billed_units and estimate_only against the sandbox's billing ledger.

The sandbox here has no faults, so what it billed must equal what the summaries claim, to the unit.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_patsnap.exceptions import PatsnapBudgetError
from airflow_provider_patsnap.operators import _batch
from airflow_provider_patsnap.operators.patsnap import PatsnapAwardOperator
from airflow_provider_patsnap.sandbox import Sandbox
from airflow_provider_patsnap.sandbox.data import patent_object
from tests.helpers import OperatorClock, business, numbers
from tests.sql_engines import ENGINES, allow, engine_connection, execute, records, refuse, table_exists

AWARD_PATH = "/advanced-patent-data/award-data"
START = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
FIRST = [*numbers(250, start=140000000), "NODATA01", "NODATA02"]
LATER = numbers(50, start=150000000)


def with_data(ids: list[str]) -> int:
    """How many of ``ids`` the sandbox has data for: each is one billed unit."""
    return sum(patent_object("P032", "patent_number", value) is not None for value in ids)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> OperatorClock:
    fake = OperatorClock(START)
    monkeypatch.setattr(_batch, "utc_now", fake)
    return fake


@pytest.fixture(params=ENGINES)
def warehouse(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_RB", engine_connection(request.param, request, "rb"))
    return "rb"


class Ledger:
    """Billed units and requested ids since the last look."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.mark()

    def mark(self) -> None:
        self.billed = self.sandbox.stats()["billed_units"]
        self.sandbox.clear_requests()

    def since(self) -> tuple[int, list[str]]:
        """(units billed, ids requested) since the last mark; marks again."""
        billed = self.sandbox.stats()["billed_units"] - self.billed
        requested = [value for record in business(self.sandbox, AWARD_PATH) for value in record.ids]
        self.mark()
        return billed, requested


def awards(ids: list[str], **kwargs: Any) -> PatsnapAwardOperator:
    return PatsnapAwardOperator(task_id="awards", patent_numbers=ids, sql_conn_id="rb", **kwargs)


@pytest.mark.parametrize("mode", ["merge", "sync", "history"])
def test_refresh_after_pays_only_for_what_is_stale_or_new(
    patsnap: Sandbox, clock: OperatorClock, warehouse: str, mode: str
) -> None:
    ledger = Ledger(patsnap)
    first = awards(FIRST, write_mode=mode, refresh_after="1d").execute(context={})
    billed, requested = ledger.since()
    assert billed == first["billed_units"] == with_data(FIRST)
    assert sorted(requested) == sorted(FIRST)

    clock.now = START + timedelta(hours=6)
    second = awards(FIRST + LATER, write_mode=mode, refresh_after="1d").execute(context={})
    billed, requested = ledger.since()

    # Patents fetched 6 hours ago, with data or without (NODATA01/02), are not asked for again.
    assert sorted(requested) == sorted(LATER)
    assert billed == second["billed_units"] == with_data(LATER)
    assert second["skipped_fresh"] == len(FIRST)
    assert second["billed_units_saved"] == with_data(FIRST)

    clock.now = START + timedelta(days=2)
    third = awards(FIRST, write_mode=mode, refresh_after="1d").execute(context={})
    billed, requested = ledger.since()
    assert sorted(requested) == sorted(FIRST)  # stale now: all fetched again
    assert billed == third["billed_units"] == with_data(FIRST) and third["skipped_fresh"] == 0


def test_state_written_by_a_clock_that_was_ahead_or_unreadable_promises_nothing(
    patsnap: Sandbox, clock: OperatorClock, warehouse: str
) -> None:
    """A run whose clock was a month ahead writes state rows "fetched" in the future; once the clock is
    corrected they are not fresh (their patents are fetched again). The run after that skips everything
    (its state is now), but a row whose fetched_at is not a time promises nothing either."""
    ledger = Ledger(patsnap)
    clock.now = START + timedelta(days=30)
    awards(FIRST, refresh_after="7d").execute(context={})
    ledger.since()
    clock.now = START  # the clock corrected

    corrected = awards(FIRST, refresh_after="7d").execute(context={})

    billed, requested = ledger.since()
    assert sorted(requested) == sorted(FIRST) and corrected["skipped_fresh"] == 0
    assert billed == corrected["billed_units"] == with_data(FIRST)
    clock.now = START + timedelta(hours=1)
    after = awards(FIRST, refresh_after="7d").execute(context={})
    assert ledger.since() == (0, []) and after["skipped_fresh"] == len(FIRST)
    execute("rb", "UPDATE patsnap_award_state SET fetched_at = 'yesterday' WHERE patent = 'NODATA01'")
    clock.now = START + timedelta(hours=2)
    awards(FIRST, refresh_after="7d").execute(context={})
    assert ledger.since() == (0, ["NODATA01"])  # asked again, and billed nothing: it has no data


def test_budget_stops_before_a_call_that_could_pass_it_and_a_rerun_resumes(
    patsnap: Sandbox, clock: OperatorClock, warehouse: str
) -> None:
    ledger = Ledger(patsnap)
    op = awards(FIRST, refresh_after="7d", max_billed_units=120)

    with pytest.raises(PatsnapBudgetError, match="max_billed_units=120") as stopped:
        op.execute(context={})
    billed, requested = ledger.since()

    partial = stopped.value.summary
    assert billed == partial["billed_units"] <= 120
    assert partial["not_fetched"] == len(FIRST) - len(requested) > 0
    # Everything fetched was written: the rows of every patent requested are in the table.
    [(rows,)] = records("rb", "SELECT COUNT(*) FROM patsnap_award")
    assert rows == partial["rows"] > 0
    [(remembered,)] = records("rb", "SELECT COUNT(*) FROM patsnap_award_state")
    assert remembered == len(requested)

    clock.now = START + timedelta(hours=1)
    resumed = awards(FIRST, refresh_after="7d", max_billed_units=1000).execute(context={})
    billed_again, requested_again = ledger.since()
    assert not set(requested_again) & set(requested)  # nothing paid twice
    assert billed_again == resumed["billed_units"]
    assert billed + billed_again == with_data(FIRST)
    [(rows,)] = records("rb", "SELECT COUNT(*) FROM patsnap_award")
    assert rows == partial["rows"] + resumed["rows"]


def test_a_budget_never_lets_one_call_ask_for_more_patents_than_units_left(
    patsnap: Sandbox, clock: OperatorClock, warehouse: str
) -> None:
    ids = numbers(30, start=160000000) + [f"NODATA{n}" for n in range(5)]
    ledger = Ledger(patsnap)

    with pytest.raises(PatsnapBudgetError):
        awards(sorted(ids), max_billed_units=7).execute(context={})

    calls = [list(record.ids) for record in business(patsnap, AWARD_PATH)]
    billed, _ = ledger.since()
    assert billed == 7
    spent = 0
    for call in calls:  # each call asked for at most the units still left before it
        assert 0 < len(call) <= 7 - spent
        spent += with_data(call)


def test_estimate_only_calls_nothing_and_counts_what_a_run_would_request(
    patsnap: Sandbox, clock: OperatorClock, warehouse: str
) -> None:
    ledger = Ledger(patsnap)
    before = awards(FIRST, refresh_after="1d", estimate_only=True).execute(context={})
    assert before["would_request"] == len(FIRST) and before["skipped_fresh"] == 0
    assert not table_exists("rb", "patsnap_award_state")
    awards(FIRST, refresh_after="1d").execute(context={})
    ledger.since()
    clock.now = START + timedelta(hours=1)

    estimate = awards(FIRST + LATER, refresh_after="1d", estimate_only=True).execute(context={})

    assert patsnap.requests == []  # not even a token
    assert ledger.since()[0] == 0
    assert estimate["would_request"] == len(LATER) == estimate["billed_units_at_most"]
    assert estimate["skipped_fresh"] == len(FIRST)
    assert estimate["billed_units_saved"] == with_data(FIRST)


def refuse_rows_of(patent: str, refused: bool) -> None:
    """Make the database refuse (or take again) every row of ``patent``, as a CHECK constraint does."""
    if refused:
        refuse("rb", "patsnap_award", f"pn <> '{patent}'")
    else:
        allow("rb", "patsnap_award")


@pytest.mark.parametrize("mode", ["merge", "sync", "history"])
def test_a_patent_whose_rows_the_database_refused_is_not_remembered_as_fetched(
    patsnap: Sandbox, clock: OperatorClock, warehouse: str, mode: str
) -> None:
    ids = numbers(20, start=140000000)
    refused = next(value for value in ids if with_data([value]))
    awards(["NODATA01"], write_mode=mode).execute(context={})  # creates the table
    refuse_rows_of(refused, True)
    ledger = Ledger(patsnap)
    first = awards(ids, write_mode=mode, refresh_after="1d", max_rejects=20).execute(context={})
    assert first["rejects"] > 0 and ledger.since()[0] == with_data(ids)
    refuse_rows_of(refused, False)  # the table is fixed
    clock.now = START + timedelta(hours=6)

    second = awards(ids, write_mode=mode, refresh_after="1d").execute(context={})

    billed, requested = ledger.since()
    assert requested == [refused] and billed == second["billed_units"] == 1  # paid again: it had not landed
    assert second["rejects"] == 0 and second["rows"] == first["rejects"]
    [(rows,)] = records("rb", f"SELECT COUNT(*) FROM patsnap_award WHERE pn = '{refused}'")
    assert rows == second["rows"]
