"""Input that a retry cannot fix fails the task at once, whatever its ``retries``."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_patsnap._compat import AirflowFailException
from airflow_provider_patsnap.exceptions import RowLimitExceededError
from airflow_provider_patsnap.ids import InvalidPatentIdsError
from airflow_provider_patsnap.operators.patsnap import PatsnapAwardOperator
from airflow_provider_patsnap.sinks.names import output_file


@pytest.mark.parametrize(
    "rendered, message",
    [("CN1A, CN 2A", "'CN 2A'"), ("", "no patent_number")],
)
def test_bad_rendered_ids_fail_without_retry(rendered: str, message: str) -> None:
    operator = PatsnapAwardOperator(task_id="award", patent_numbers="{{ params.ids }}", retries=3)
    operator.patent_numbers = rendered  # what template rendering produced
    with pytest.raises(AirflowFailException, match=message) as raised:
        operator.execute(context={})  # type: ignore[arg-type]
    assert isinstance(raised.value, InvalidPatentIdsError)


def test_bad_rendered_table_fails_without_retry() -> None:
    operator = PatsnapAwardOperator(
        task_id="award", patent_numbers=["CN1A"], sql_conn_id="warehouse", table="{{ params.table }}"
    )
    operator.table = "awards; DROP TABLE x"
    with pytest.raises(AirflowFailException, match="not a safe SQL identifier"):
        operator.execute(context={})  # type: ignore[arg-type]


def test_row_limit_is_not_retried() -> None:
    assert issubclass(RowLimitExceededError, AirflowFailException)


def test_mapped_shards_writing_one_file_name_get_one_file_each(tmp_path: Path) -> None:
    target = f"file://{tmp_path}/awards.jsonl"
    assert str(output_file(target, "t", "run", -1)).endswith("/awards.jsonl")
    names = {str(output_file(target, "t", "run", index)) for index in range(3)}
    assert len(names) == 3
    assert str(output_file(target, "t", "run", 2)).endswith("/awards_2.jsonl")
