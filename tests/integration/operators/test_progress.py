"""A long run talks to its user: a start line, progress lines as batches land, a final line and block."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_patsnap.operators.patsnap import PatsnapLegalInformationOperator
from airflow_provider_patsnap.sandbox import Sandbox
from tests.helpers import numbers

COUNTS = ("batches", "patents", "rows", "rejects", "billed", "calls", "retries", "rate-limited")


def counts(line: str) -> dict[str, int]:
    found = {}
    for name in COUNTS:
        match = re.search(rf"{name} ([\d,]+)", line)
        assert match, (name, line)
        found[name] = int(match[1].replace(",", ""))
    return found


def test_a_run_of_2000_patents_at_1_s_latency_reports_its_progress(
    patsnap_sandbox_factory: Callable[..., Sandbox],
    monkeypatch: pytest.MonkeyPatch,
    sqlite_conn: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sandbox = patsnap_sandbox_factory(latency=1.0, qps=0)
    monkeypatch.setenv("AIRFLOW_CONN_PATSNAP_DEFAULT", sandbox.connection_json(qps=5))
    summary: Any = PatsnapLegalInformationOperator(
        task_id="legal", patent_numbers=numbers(2000), sql_conn_id=sqlite_conn
    ).execute(context={})
    log = caplog.text + capsys.readouterr().out  # Airflow 3 logs through structlog to stdout
    # Each message once, whichever capture saw it (Airflow 2.11 logs to both).
    lines = list(
        dict.fromkeys(
            line[line.index("PatSnap P026:") :] for line in log.splitlines() if "PatSnap P026:" in line
        )
    )

    [start] = [line for line in lines if "requested," in line]
    assert "2,000 patent(s) requested, 2,000 after the freshness filter" in start
    assert "20 batch(es) at qps=5 (500 patents/s at most)" in start
    steps = [counts(line) for line in lines if ": progress:" in line]
    [final] = [counts(line) for line in lines if ": finished:" in line]
    assert len(steps) >= 5
    for earlier, later in zip([*steps, final], [*steps, final][1:], strict=False):
        assert all(later[name] >= earlier[name] for name in COUNTS), (earlier, later)
    assert final["rows"] == summary["rows"] and final["billed"] == summary["billed_units"]
    assert final["calls"] == summary["calls"] and final["patents"] == 2000 and final["batches"] == 20
    block = log[log.index("PatSnap P026 Legal information: summary") :]
    assert re.search(rf"\n\s+billed_units\s+{summary['billed_units']:,}\n", block)
