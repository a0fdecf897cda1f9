"""The data operators against the sandbox over loopback: rows, batching, missing ids, XCom, files."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from airflow_provider_patsnap.endpoints import ENDPOINTS
from airflow_provider_patsnap.exceptions import PatsnapAuthError, RowLimitExceededError
from airflow_provider_patsnap.ids import InvalidPatentIdsError
from airflow_provider_patsnap.operators.patsnap import (
    PatsnapAwardOperator,
    PatsnapBatchOperator,
    PatsnapCustomsRecordOperator,
    PatsnapLegalInformationOperator,
    PatsnapSeicClassificationOperator,
)
from airflow_provider_patsnap.sandbox import Sandbox
from airflow_provider_patsnap.sandbox.data import patent_id_for_number, patent_object
from tests.helpers import OutletEvents, expected_rows, sorted_rows

OPERATORS: list[type[PatsnapBatchOperator]] = [
    PatsnapSeicClassificationOperator,
    PatsnapAwardOperator,
    PatsnapCustomsRecordOperator,
    PatsnapLegalInformationOperator,
]
NUMBERS = (
    [f"CN{110650000 + i}A" for i in range(15)]
    + [f"JP{6500000 + i}B2" for i in range(10)]
    + [f"US{10200000 + i}B2" for i in range(10)]
)
CODE_COLUMNS = ("seic_lv1_no", "seic_lv2_no", "award_session", "event_code", "award_level")


def numbers(count: int, prefix: str = "CN") -> list[str]:
    return [f"{prefix}{120000000 + i}A" for i in range(count)]


def data_calls(sandbox: Sandbox, operator: type[PatsnapBatchOperator]) -> list[Any]:
    return [record for record in sandbox.requests if record.path == operator.endpoint.path]


@pytest.mark.parametrize("operator", OPERATORS, ids=lambda op: op.endpoint.code)
def test_rows_match_the_sandbox(patsnap: Sandbox, operator: type[PatsnapBatchOperator]) -> None:
    kwargs: dict[str, Any] = {"lang": "cn"} if operator is PatsnapSeicClassificationOperator else {}
    rows = operator(task_id="t", patent_numbers=NUMBERS, **kwargs).execute(context={})

    expected = expected_rows(operator.endpoint, NUMBERS, lang=kwargs.get("lang", "en"))
    assert expected, "the sample must produce rows"
    assert sorted_rows(rows) == sorted(expected, key=lambda row: row["record_key"])
    assert all(set(row) == set(operator.endpoint.column_names) for row in rows)
    assert all(row["fetched_at"].endswith("+00:00") for row in rows)
    for column in CODE_COLUMNS:
        assert all(isinstance(row[column], str | None) for row in rows if column in row)
    json.dumps(rows)  # XCom-safe


@pytest.mark.parametrize("operator", OPERATORS, ids=lambda op: op.endpoint.code)
def test_cjk_text_arrives_intact(patsnap: Sandbox, operator: type[PatsnapBatchOperator]) -> None:
    kwargs: dict[str, Any] = {"lang": "cn"} if operator is PatsnapSeicClassificationOperator else {}
    rows = operator(task_id="t", patent_numbers=numbers(40), **kwargs).execute(context={})
    text = "".join(str(value) for row in rows for value in row.values())
    assert any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_patent_ids_as_a_comma_separated_string(patsnap: Sandbox) -> None:
    ids = [patent_id_for_number(number) for number in NUMBERS[:12]]
    rows = PatsnapLegalInformationOperator(task_id="t", patent_ids=",".join(ids)).execute(context={})
    assert sorted_rows(rows) == sorted(
        expected_rows(ENDPOINTS["P026"], ids, kind="patent_id"), key=lambda row: row["record_key"]
    )
    assert {row["source"] for row in rows} == {"inpadoc", "official"}
    calls = data_calls(patsnap, PatsnapLegalInformationOperator)
    assert calls and all("patent_id" in call.params and "patent_number" not in call.params for call in calls)


def test_a_rendered_list_template_is_read_back_as_a_list(patsnap: Sandbox) -> None:
    op = PatsnapAwardOperator(task_id="t", patent_numbers="{{ ti.xcom_pull('ids') }}")
    op.patent_numbers = str(NUMBERS[:5])  # what Jinja renders for a pulled list
    op.execute(context={})
    assert sorted(
        id_ for record in data_calls(patsnap, PatsnapAwardOperator) for id_ in record.ids
    ) == sorted(NUMBERS[:5])


@pytest.mark.parametrize("operator", OPERATORS, ids=lambda op: op.endpoint.code)
def test_250_ids_go_out_in_three_calls_of_at_most_100(
    patsnap: Sandbox, operator: type[PatsnapBatchOperator], tmp_path: Any
) -> None:
    ids = numbers(250, prefix="EP")
    summary = operator(task_id="t", patent_numbers=ids, output_path=str(tmp_path / "out.jsonl")).execute(
        context={}
    )
    calls = data_calls(patsnap, operator)
    assert len(calls) == 3 and summary["calls"] == 3
    assert all(len(call.ids) <= 100 for call in calls)
    assert sorted(id_ for call in calls for id_ in call.ids) == sorted(ids)
    found = [
        value for value in ids if patent_object(operator.endpoint.code, "patent_number", value) is not None
    ]
    assert summary["requested"] == 250
    assert summary["found"] == summary["billed_units"] == len(found)
    assert summary["missing"] == 250 - len(found)


def test_missing_ids_are_counted_and_logged(
    patsnap: Sandbox, tmp_path: Any, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [*NUMBERS, "NODATA001", "NODATA002"]
    op = PatsnapCustomsRecordOperator(task_id="t", patent_numbers=ids, output_path=str(tmp_path / "c.jsonl"))
    summary = op.execute(context={})
    missing = [value for value in ids if patent_object("P031", "patent_number", value) is None]
    assert summary["missing"] == len(missing) and summary["found"] == len(ids) - len(missing)
    assert summary["rows"] == len(expected_rows(ENDPOINTS["P031"], ids))
    logs = caplog.text + capsys.readouterr().out  # Airflow 3 logs through structlog to stdout
    assert f"{len(missing)} patent(s) had no P031 data" in logs and "NODATA001" in logs


def test_fail_on_missing_fails_after_the_rows_are_written(patsnap: Sandbox, tmp_path: Any) -> None:
    target = tmp_path / "award.jsonl"
    ids = [*NUMBERS, "NODATA001"]
    op = PatsnapAwardOperator(task_id="t", patent_numbers=ids, output_path=str(target), fail_on_missing=True)
    with pytest.raises(ValueError, match="NODATA001"):
        op.execute(context={})
    assert len(target.read_text(encoding="utf-8").splitlines()) == len(expected_rows(ENDPOINTS["P032"], ids))


def test_xcom_row_limit_points_to_the_other_destinations(patsnap: Sandbox) -> None:
    op = PatsnapLegalInformationOperator(task_id="t", patent_numbers=NUMBERS, xcom_row_limit=5)
    with pytest.raises(RowLimitExceededError, match=r"sql_conn_id.*output_path"):
        op.execute(context={})


def test_ndjson_file_is_utf8_and_a_rerun_replaces_it(patsnap: Sandbox, tmp_path: Any) -> None:
    target = tmp_path / "deep" / "seic.jsonl"
    op = PatsnapSeicClassificationOperator(
        task_id="t", patent_numbers=NUMBERS, lang="cn", output_path=f"file://{target}"
    )
    first = op.execute(context={})
    second = op.execute(context={})
    raw = target.read_bytes().decode("utf-8")
    lines = [json.loads(line) for line in raw.splitlines()]
    assert (
        len(lines)
        == first["rows"]
        == second["rows"]
        == len(expected_rows(ENDPOINTS["P022"], NUMBERS, lang="cn"))
    )
    assert "\\u" not in raw and any("\u4e00" <= ch <= "\u9fff" for ch in raw)
    assert second["destination"].endswith("seic.jsonl")
    # No temp file left behind: the file, and its run record beside it.
    assert sorted(path.name for path in target.parent.iterdir()) == ["seic.jsonl", "seic.run.json"]


def test_a_directory_gets_one_file_per_task_and_run(patsnap: Sandbox, tmp_path: Any) -> None:
    op = PatsnapAwardOperator(task_id="award", patent_numbers=NUMBERS, output_path=f"{tmp_path}/")
    summary = op.execute(context={"run_id": "scheduled__2024-01-02T00:00:00+00:00"})
    assert summary["destination"] == f"{tmp_path}/award/scheduled__2024-01-02T00_00_00_00_00.jsonl"


def test_emit_asset_declares_an_alias_and_attaches_the_destination_once_it_was_written(
    patsnap: Sandbox, sqlite_conn: str, tmp_path: Any, outlet_events: OutletEvents
) -> None:
    table_op = PatsnapAwardOperator(
        task_id="a", patent_numbers=NUMBERS, sql_conn_id=sqlite_conn, emit_asset=True
    )
    file_op = PatsnapAwardOperator(
        task_id="b", patent_numbers=NUMBERS, output_path=f"{tmp_path}/a.jsonl", emit_asset=True
    )
    estimate_op = PatsnapAwardOperator(
        task_id="c", patent_numbers=NUMBERS, sql_conn_id=sqlite_conn, emit_asset=True, estimate_only=True
    )
    assert [outlet.name for outlet in table_op.outlets] == [f"patsnap:a:{sqlite_conn}/patsnap_award"]
    assert [outlet.name for outlet in file_op.outlets] == [f"patsnap:b:{tmp_path}/a.jsonl"]

    events = outlet_events
    rows = [op.execute(context={"outlet_events": events})["rows"] for op in (table_op, file_op)]
    estimate_op.execute(context={"outlet_events": events})

    # Named as the database and the file are (tests/integration/operators/test_lineage.py), not per conn
    # id; the estimate wrote nothing and attached nothing.
    table_uri = f"sqlite:{os.environ['SQLITE_PATH']}/patsnap_award"
    assert [(alias.name, asset.uri, extra) for alias, asset, extra in events.added] == [
        (table_op.outlets[0].name, table_uri, {"endpoint": "P032", "rows": rows[0]}),
        (file_op.outlets[0].name, f"file://{tmp_path}/a.jsonl", {"endpoint": "P032", "rows": rows[1]}),
    ]
    assert rows[0] == rows[1] > 0
    with pytest.raises(ValueError, match="emit_asset"):
        PatsnapAwardOperator(task_id="d", patent_numbers=NUMBERS, emit_asset=True)


BAD_INPUTS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"patent_numbers": []}, InvalidPatentIdsError, "no patent_number"),
    ({"patent_numbers": ""}, InvalidPatentIdsError, "no patent_number"),
    ({}, ValueError, "neither"),
    ({"patent_numbers": "CN1A", "patent_ids": "x"}, ValueError, "both"),
    ({"patent_numbers": ["CN1A", "  ", "CN 2A"]}, InvalidPatentIdsError, "'CN 2A'"),
    ({"patent_numbers": ["CN1A", "X" * 65]}, InvalidPatentIdsError, "65 characters"),
    ({"patent_numbers": ["CN1A", 7]}, InvalidPatentIdsError, "7 is a int"),
    ({"patent_numbers": "CN1A", "sql_conn_id": "wh", "output_path": "/tmp/x"}, ValueError, "'/tmp/x'"),
    ({"patent_numbers": "CN1A", "table": "t"}, ValueError, "needs sql_conn_id"),
    ({"patent_numbers": "CN1A", "sql_conn_id": "wh", "table": "x; drop table y"}, ValueError, "'x; drop"),
    ({"patent_numbers": "CN1A", "lang": "de"}, ValueError, "'de'"),
]
# Known only at run time (an upstream task's XCom): a dict would send its keys as patent numbers.
RUN_TIME_ONLY_INPUTS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"patent_numbers": {"CN1A": 1, "CN2A": 2}}, InvalidPatentIdsError, "got a dict with keys"),
]


@pytest.mark.parametrize(("kwargs", "error", "names"), BAD_INPUTS)
def test_bad_input_is_rejected_when_the_dag_is_parsed(
    kwargs: dict[str, Any], error: type, names: str
) -> None:
    with pytest.raises(error, match=names.replace("(", r"\(")):
        PatsnapSeicClassificationOperator(task_id="t", **kwargs)


@pytest.mark.parametrize(("kwargs", "error", "names"), BAD_INPUTS + RUN_TIME_ONLY_INPUTS)
def test_bad_rendered_input_is_rejected_before_any_call(
    patsnap: Sandbox, kwargs: dict[str, Any], error: type, names: str
) -> None:
    """Values that arrive by template or XCom are only known at run time: checked before any HTTP call."""
    op = PatsnapSeicClassificationOperator(
        task_id="t", patent_numbers="{{ params.ids }}", lang="{{ params.lang }}"
    )
    op.patent_numbers = None
    op.lang = "en"
    for name, value in kwargs.items():
        setattr(op, name, value)
    with pytest.raises(error, match=names.replace("(", r"\(")):
        op.execute(context={})
    assert patsnap.requests == []


def test_a_failed_run_leaves_the_previous_file_alone(
    patsnap: Sandbox, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "award.jsonl"
    op = PatsnapAwardOperator(task_id="t", patent_numbers=NUMBERS, output_path=str(target))
    op.execute(context={})
    before = target.read_bytes()
    monkeypatch.setenv(
        "AIRFLOW_CONN_PATSNAP_DEFAULT",
        json.dumps(
            {"conn_type": "patsnap", "host": patsnap.base_url, "password": "sk-wrong", "extra": {"qps": 0}}
        ),
    )
    with pytest.raises(PatsnapAuthError):
        op.execute(context={})
    assert target.read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["award.jsonl", "award.run.json"]
    record = json.loads((tmp_path / "award.run.json").read_text(encoding="utf-8"))
    assert (record["outcome"], record["error_class"]) == ("failed", "PatsnapAuthError")  # the last try's


def test_a_killed_runs_temporary_files_are_removed_by_the_next_run(patsnap: Sandbox, tmp_path: Any) -> None:
    target = tmp_path / "awards.jsonl"
    # What a SIGKILLed run leaves behind: its rows and its rejects, each under a temporary name. The
    # next run has no rejects, and still removes the rejects' temporary file.
    for stale in (".awards.jsonl.0123456789abcdef.tmp", ".awards.rejects.jsonl.0123456789abcdef.tmp"):
        (tmp_path / stale).write_text('{"half": "a row"', encoding="utf-8")
    PatsnapAwardOperator(task_id="t", patent_numbers=NUMBERS, output_path=str(target)).execute({})
    assert target.exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["awards.jsonl", "awards.run.json"]


def test_one_patent_written_in_two_cases_is_asked_for_once(patsnap: Sandbox) -> None:
    summary = PatsnapAwardOperator(
        task_id="t", patent_numbers=["cn110650438a", "CN110650438A"], sql_conn_id=None
    ).execute(context={})
    assert isinstance(summary, list)
    [call] = [record for record in patsnap.requests if record.ids]
    assert call.ids == ("cn110650438a",)
