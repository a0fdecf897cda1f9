"""Table names and output paths are refused, naming the value, before any call to PatSnap."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_patsnap._compat import AirflowFailException
from airflow_provider_patsnap.operators.patsnap import PatsnapAwardOperator
from airflow_provider_patsnap.sinks.names import check_table_name, output_file, rejects_table_name


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
    assert rejects_table_name("enrich.awards") == "enrich.awards_rejects"
    with pytest.raises(ValueError, match="too long for its rejects table"):
        check_table_name("a" * 60)


@pytest.mark.parametrize("task_id", ["..", ".", "..."])
def test_a_task_id_that_would_leave_the_output_folder_is_refused(tmp_path: Path, task_id: str) -> None:
    with pytest.raises(ValueError, match=f"task_id {task_id!r} cannot name a folder"):
        output_file(f"file://{tmp_path}/out/", task_id, "run")


def test_a_dotted_task_id_of_a_task_group_stays_inside(tmp_path: Path) -> None:
    path = output_file(f"file://{tmp_path}/out/", "group.task", "manual__2024")
    assert str(path).endswith("/out/group.task/manual__2024.jsonl")
