"""The warehouse options of the data operators are checked when the DAG is parsed."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from airflow_provider_patsnap.operators._inputs import as_duration
from airflow_provider_patsnap.operators.patsnap import PatsnapAwardOperator


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", timedelta(days=7)),
        ("1d 6h", timedelta(days=1, hours=6)),
        ("90s", timedelta(seconds=90)),
        (3600, timedelta(hours=1)),
        (timedelta(minutes=5), timedelta(minutes=5)),
        ("2w", timedelta(weeks=2)),
    ],
)
def test_durations_in_the_forms_users_write(text: Any, expected: timedelta) -> None:
    assert as_duration(text, "refresh_after") == expected


@pytest.mark.parametrize("bad", ["7x", "", "d", 0, -5, "0h", True, [1]])
def test_a_duration_that_is_not_one_is_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match="refresh_after must be a positive duration"):
        as_duration(bad, "refresh_after")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sql_conn_id": "wh", "write_mode": "upsert"}, "write_mode must be one of"),
        ({"output_path": "/tmp/a.jsonl", "write_mode": "sync"}, "needs sql_conn_id"),
        ({"write_mode": "history"}, "needs sql_conn_id"),
        ({"output_path": "/tmp/a.jsonl", "refresh_after": "1d"}, "refresh_after needs sql_conn_id"),
        ({"sql_conn_id": "wh", "refresh_after": "soon"}, "positive duration"),
        ({"sql_conn_id": "wh", "max_billed_units": -1}, "max_billed_units"),
    ],
)
def test_warehouse_options_are_checked_at_parse_time(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PatsnapAwardOperator(task_id="t", patent_numbers=["CN1A"], **kwargs)


COUNTS = ("max_billed_units", "max_rejects", "xcom_row_limit")


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        *((name, bad) for name in COUNTS for bad in (2.5, float("nan"), float("inf"), "5", True, -1)),
        ("max_rejects", None),  # None means "no budget" for max_billed_units only
        ("xcom_row_limit", None),
    ],
)
def test_counts_are_whole_numbers(name: str, bad: Any) -> None:
    message = rf"{name} must be a whole number >= 0 \(an int\), got {re.escape(repr(bad))}"
    with pytest.raises(ValueError, match=message):
        PatsnapAwardOperator(task_id="t", patent_numbers=["CN1A"], **{name: bad})


@pytest.mark.parametrize("name", COUNTS)
def test_a_whole_number_count_is_taken(name: str) -> None:
    assert getattr(PatsnapAwardOperator(task_id="t", patent_numbers=["CN1A"], **{name: 0}), name) == 0


def test_a_data_task_links_to_what_its_columns_mean_and_nothing_of_its_run() -> None:
    from types import SimpleNamespace

    from airflow_provider_patsnap import get_provider_info
    from airflow_provider_patsnap.operators._batch import PatsnapColumnsLink
    from airflow_provider_patsnap.operators.patsnap import PatsnapLegalInformationOperator

    operator = PatsnapLegalInformationOperator(task_id="t", patent_numbers=["CN1A"])
    [link] = operator.operator_extra_links
    url = link.get_link(operator, ti_key=None)
    assert url.endswith("/docs/destinations.md#patsnap_legal_information-p026-legal-information")
    # Airflow 2.11's webserver hands the link the serialized task: its task_type names the class.
    serialized = SimpleNamespace(task_type="PatsnapLegalInformationOperator")
    assert link.get_link(serialized, ti_key=None) == url
    [path] = get_provider_info()["extra-links"]
    assert path == f"{PatsnapColumnsLink.__module__}.{PatsnapColumnsLink.__qualname__}"


def test_an_object_storage_path_is_read_as_its_text_with_its_connection() -> None:
    """``output_path`` as an ObjectStoragePath: its text keeps the connection id, which reaches the file
    through Airflow, and templates in it render like a URL's; the asset alias leaves the connection out."""
    from airflow_provider_patsnap._compat import ObjectStoragePath

    path = ObjectStoragePath("s3://aws_default@lake/patsnap/") / "award" / "{{ ds }}.jsonl"
    operator = PatsnapAwardOperator(task_id="a", patent_numbers=["CN1A"], output_path=path)
    assert operator.output_path == "s3://aws_default@lake/patsnap/award/{{ ds }}.jsonl"
    literal = ObjectStoragePath("s3://aws_default@lake/patsnap/award.jsonl")
    operator = PatsnapAwardOperator(
        task_id="a", patent_numbers=["CN1A"], output_path=literal, emit_asset=True
    )
    assert [outlet.name for outlet in operator.outlets] == ["patsnap:a:s3://lake/patsnap/award.jsonl"]
