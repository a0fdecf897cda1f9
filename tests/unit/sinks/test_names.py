"""Table names and output paths are refused, naming the value, before any call to PatSnap."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_patsnap._compat import AirflowFailException, ObjectStoragePath
from airflow_provider_patsnap.operators.patsnap import PatsnapAwardOperator
from airflow_provider_patsnap.sinks.names import (
    check_table_name,
    file_format_of,
    output_file,
    rejects_file,
)


@pytest.mark.parametrize("table", ["order", "USER", "enrich.select", "group.awards"])
def test_a_reserved_word_is_refused_at_parse_time_naming_it(table: str) -> None:
    with pytest.raises(ValueError, match=f"table {table!r}: .* is a reserved SQL word"):
        PatsnapAwardOperator(task_id="t", patent_numbers=["CN1A"], sql_conn_id="warehouse", table=table)


def test_a_reserved_word_rendered_from_a_template_fails_without_retry() -> None:
    operator = PatsnapAwardOperator(
        task_id="t", patent_numbers=["CN1A"], sql_conn_id="warehouse", table="{{ params.table }}", retries=3
    )
    operator.table = "order"
    with pytest.raises(AirflowFailException, match="'order' is a reserved SQL word"):
        operator.execute(context={})  # type: ignore[arg-type]


def test_ordinary_names_and_their_rejects_tables() -> None:
    assert check_table_name("awards_order") == "awards_order"
    with pytest.raises(ValueError, match="too long for its rejects table"):
        check_table_name("a" * 60)


@pytest.mark.parametrize("task_id", ["..", ".", "..."])
def test_a_task_id_that_would_leave_the_output_folder_is_refused(tmp_path: Path, task_id: str) -> None:
    with pytest.raises(ValueError, match=f"task_id {task_id!r} cannot name a folder"):
        output_file(f"file://{tmp_path}/out/", task_id, "run")


def test_a_dotted_task_id_of_a_task_group_stays_inside(tmp_path: Path) -> None:
    path = output_file(f"file://{tmp_path}/out/", "group.task", "manual__2024")
    assert str(path).endswith("/out/group.task/manual__2024.jsonl")


@pytest.mark.parametrize(
    ("output_path", "file_format", "fmt"),
    [
        ("/data/awards.parquet", None, "parquet"),
        ("s3://conn@bucket/awards_{{ ds }}.PARQUET", None, "parquet"),
        ("/data/awards.jsonl", None, "jsonl"),
        ("/data/awards.json", None, "jsonl"),
        ("/data/out/", None, "jsonl"),
        ("/data/out/", "parquet", "parquet"),
        ("/data/out", "parquet", "parquet"),  # may be a folder: output_file decides when the run opens
        ("/data/awards.parquet", "parquet", "parquet"),
    ],
)
def test_the_file_name_decides_the_format_and_file_format_a_folders(
    output_path: str, file_format: str | None, fmt: str
) -> None:
    assert file_format_of(output_path, file_format) == fmt


def test_a_folder_gets_files_of_its_format_and_shards_their_own(tmp_path: Path) -> None:
    folder = f"file://{tmp_path}/out/"
    assert str(output_file(folder, "award", "manual__1", -1, "parquet")).endswith(
        "/out/award/manual__1.parquet"
    )
    assert str(output_file(folder, "award", "manual__1", 3, "parquet")).endswith("/award/manual__1_3.parquet")
    assert str(output_file(folder, "award", "manual__1")).endswith("/award/manual__1.jsonl")
    assert str(output_file(f"{tmp_path}/a.parquet", "t", "run", 2)).endswith("/a_2.parquet")
    (tmp_path / "existing").mkdir()
    assert str(output_file(f"{tmp_path}/existing", "t", "run", -1, "parquet")).endswith(
        "/existing/t/run.parquet"
    )
    with pytest.raises(ValueError, match=r"neither a folder nor a file name ending in \.parquet"):
        output_file(f"{tmp_path}/missing", "t", "run", -1, "parquet")


def test_rejects_of_a_parquet_file_are_ndjson_beside_it(tmp_path: Path) -> None:
    assert rejects_file(ObjectStoragePath(f"file://{tmp_path}/a.parquet")).name == "a.rejects.jsonl"
    assert rejects_file(ObjectStoragePath(f"file://{tmp_path}/a.jsonl")).name == "a.rejects.jsonl"
    assert rejects_file(ObjectStoragePath(f"file://{tmp_path}/a.json")).name == "a.rejects.json"
