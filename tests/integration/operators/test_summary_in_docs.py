"""The summary docs/operators.md shows is the one a real run returns: the same keys, the same values."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from airflow_provider_patsnap.operators.patsnap import PatsnapLegalInformationOperator
from airflow_provider_patsnap.sandbox import Sandbox
from scripts.example_fixtures import shipped_patents
from tests.helpers import REPO_ROOT

SUMMARY_BLOCK = re.compile(
    r"5\. The return value is the rows \(no destination\) or a summary:\n\n```json\n(.*?)```", re.S
)


def documented_summary() -> dict[str, Any]:
    [block] = SUMMARY_BLOCK.findall((REPO_ROOT / "docs" / "operators.md").read_text(encoding="utf-8"))
    return dict(json.loads(block))


def test_the_documented_summary_is_a_real_runs(
    patsnap: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """The shipped 300 patents' P026 legal events into SQLite, as patsnap_enrichment's task does."""
    warehouse = json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "warehouse.db")})
    monkeypatch.setenv("AIRFLOW_CONN_PATSNAP_WAREHOUSE", warehouse)
    operator = PatsnapLegalInformationOperator(
        task_id="legal_information", patent_numbers=shipped_patents(), sql_conn_id="patsnap_warehouse"
    )

    summary = operator.execute(context={})

    # Every key, in the order the task returns them, with the values of this run: a key added to the
    # summary (or a change in what the sandbox returns) fails here until docs/operators.md shows it.
    assert json.dumps(summary) == json.dumps(documented_summary())
