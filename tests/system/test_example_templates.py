"""The example DAGs a data engineer copies, each under the real `airflow dags test` against the sandbox: ids
from a warehouse query, a PostgreSQL warehouse, files in object storage, a spend gate with an approval."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_patsnap._compat import AIRFLOW_VERSION
from airflow_provider_patsnap.endpoints import ENDPOINTS
from airflow_provider_patsnap.sandbox import Sandbox
from scripts.example_fixtures import LAKE_VARIABLE, seed_portfolio, shipped_patents
from tests.helpers import (
    AIRFLOW_BIN,
    EXAMPLE_DAGS,
    airflow,
    airflow_env,
    expected_rows,
    fresh_postgres_database,
)

DAY = "2024-06-01"
APPROVALS = tuple(int(part) for part in AIRFLOW_VERSION.split(".")[:2]) >= (3, 1)


def example_env(tmp_path: Path, sandbox: Sandbox, **extra: str) -> dict[str, str]:
    """A migrated metadata DB in ``tmp_path`` with the example DAGs, PatSnap = the sandbox, and a SQLite
    ``patsnap_warehouse`` in ``tmp_path / "warehouse.db"``."""
    warehouse = json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "warehouse.db")})
    return airflow_env(
        tmp_path / "airflow-home",
        EXAMPLE_DAGS,
        AIRFLOW_CONN_PATSNAP_DEFAULT=sandbox.connection_json(qps=20),
        AIRFLOW_CONN_PATSNAP_WAREHOUSE=warehouse,
        **extra,
    )


def dags_test(dag_id: str, env: dict[str, str], conf: dict[str, Any] | None = None) -> str:
    args = ["dags", "test", dag_id, DAY, *(["-c", json.dumps(conf)] if conf else [])]
    run = airflow(args, env)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-5000:]
    return output


def asked(sandbox: Sandbox, code: str) -> list[str]:
    """Every id the sandbox was asked for on ``code``'s path, once per time it was asked."""
    return sorted(value for r in sandbox.requests if r.path == ENDPOINTS[code].path for value in r.ids)


def task_states(tmp_path: Path, dag_id: str) -> dict[str, str]:
    with sqlite3.connect(tmp_path / "airflow-home" / "airflow.db") as meta:
        rows = meta.execute("SELECT task_id, state FROM task_instance WHERE dag_id = ?", (dag_id,)).fetchall()
    return dict(rows)


def test_ids_come_from_the_warehouse_query_in_shards(sandbox: Sandbox, tmp_path: Path) -> None:
    env = example_env(tmp_path, sandbox)
    selected = seed_portfolio(tmp_path / "warehouse.db")  # 300 patents, another owner's and inactive ones

    dags_test("patsnap_warehouse_ids", env)

    assert asked(sandbox, "P032") == sorted(selected)  # the query's ids, each asked for once
    with sqlite3.connect(tmp_path / "airflow-home" / "airflow.db") as meta:
        labels = [
            row[0] for row in meta.execute("SELECT rendered_map_index FROM task_instance ORDER BY map_index")
        ]
    assert [label.split(":")[0] for label in labels] == ["shard 1/2", "shard 2/2"], labels
    assert sum(int(label.split(": ")[1].split()[0]) for label in labels) == len(selected)
    with sqlite3.connect(tmp_path / "warehouse.db") as db:
        [(rows,)] = db.execute("SELECT COUNT(*) FROM patsnap_award").fetchall()
    assert rows == len(expected_rows(ENDPOINTS["P032"], selected))


def test_the_postgres_warehouse_keeps_the_history_of_legal_events(
    sandbox: Sandbox, tmp_path: Path, postgres_server: str
) -> None:
    import psycopg

    connection = fresh_postgres_database(postgres_server)  # the example's connection, pointed at a test DB
    env = example_env(tmp_path, sandbox, AIRFLOW_CONN_PATSNAP_POSTGRES=connection)

    dags_test("patsnap_postgres_warehouse", env)

    settings = json.loads(connection)
    with psycopg.connect(
        host=settings["host"], port=settings["port"], user=settings["login"], dbname=settings["schema"]
    ) as db:
        current, closed = db.execute(
            "SELECT COUNT(*) FILTER (WHERE valid_to IS NULL), COUNT(*) FILTER (WHERE valid_to IS NOT NULL) "
            "FROM patsnap_legal_history"
        ).fetchone()  # type: ignore[misc]
    assert current == len(expected_rows(ENDPOINTS["P026"], shipped_patents())) and closed == 0
    assert task_states(tmp_path, "patsnap_postgres_warehouse") == {
        "legal_history": "success",
        "current_events": "success",
    }


def test_files_land_in_object_storage_one_per_day(sandbox: Sandbox, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    env = example_env(tmp_path, sandbox, **{LAKE_VARIABLE: lake.as_uri() + "/"})

    dags_test("patsnap_object_storage", env)

    for code, folder in (("P022", "seic_classification"), ("P032", "award")):
        written = [json.loads(line) for line in (lake / folder / f"{DAY}.jsonl").read_text().splitlines()]
        assert len(written) == len(expected_rows(ENDPOINTS[code], shipped_patents())) > 0, folder
    # Each file and its run record, nothing else (no temporary file left behind).
    assert sorted(path.relative_to(lake).as_posix() for path in lake.rglob("*") if path.is_file()) == [
        f"award/{DAY}.jsonl",
        f"award/{DAY}.run.json",
        f"seic_classification/{DAY}.jsonl",
        f"seic_classification/{DAY}.run.json",
    ]


def test_under_its_threshold_the_spend_gate_fetches_without_asking(sandbox: Sandbox, tmp_path: Path) -> None:
    env = example_env(tmp_path, sandbox)

    output = dags_test("patsnap_spend_gate", env)

    assert "estimate: at most 300 billed units; approve_above=1000" in output
    states = task_states(tmp_path, "patsnap_spend_gate")
    assert states["approve"] == "skipped" and states["fetch"] == "success", states
    assert asked(sandbox, "P026") == sorted(shipped_patents())  # the estimate itself called nothing


# The public PATCH .../taskInstances/approve/-1/hitlDetails does this; here without HTTP, on the same
# metadata DB as the `dags test` it answers (waiting for the task to ask, which is an event, not time).
ANSWER_THE_APPROVAL = """
import sys, time
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from airflow._shared.timezones import timezone
from airflow.models.hitl import HITLUser
from airflow.models.taskinstance import TaskInstance
from airflow.models.trigger import handle_event_submit
from airflow.triggers.base import TriggerEvent
from airflow.utils.session import create_session
from airflow.utils.state import TaskInstanceState

answered, deadline = False, time.monotonic() + 180
while not answered and time.monotonic() < deadline:
    with create_session() as session:  # commits when the block ends normally (not on sys.exit)
        ti = session.scalars(
            select(TaskInstance)
            .where(TaskInstance.task_id == "approve", TaskInstance.state == TaskInstanceState.AWAITING_INPUT)
            .options(joinedload(TaskInstance.hitl_detail))
        ).first()
        if ti is not None and ti.hitl_detail is not None:
            detail = ti.hitl_detail
            print("SUBJECT " + detail.subject, flush=True)
            detail.responded_by = HITLUser(id="test", name="test")
            detail.responded_at = timezone.utcnow()
            detail.chosen_options, detail.params_input = [sys.argv[1]], {}
            session.add(detail)
            handle_event_submit(TriggerEvent(detail.as_resume_event_payload()), task_instance=ti, session=session)
            answered = True
    if not answered:
        time.sleep(0.2)
sys.exit(0 if answered else "no approval was asked for")
"""


@pytest.mark.parametrize("answer", ["Approve", "Reject"] if APPROVALS else ["none: no approval task"])
def test_above_its_threshold_the_spend_gate_waits_for_an_approval(
    sandbox: Sandbox, tmp_path: Path, answer: str
) -> None:
    """Airflow 3.1+: a person answers (here as the REST call would): Approve runs the fetch, Reject skips
    it. Older lines have no approval task: the run fails saying how to go ahead, and nothing is paid."""
    env = example_env(tmp_path, sandbox)
    command = [
        AIRFLOW_BIN,
        "dags",
        "test",
        "patsnap_spend_gate",
        DAY,
        "-c",
        json.dumps({"approve_above": 10}),
    ]
    if not APPROVALS:
        run = airflow(command[1:], env)
        assert run.returncode != 0
        output = run.stdout + run.stderr
        assert "billed up to 300 units, above approve_above=10: nothing was fetched" in output, output[-4000:]
        assert """-c '{"approve_above": 300}'""" in output
        assert sandbox.stats()["billed_units"] == 0 and asked(sandbox, "P026") == []
        return
    run = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        responder = subprocess.run(
            [sys.executable, "-c", ANSWER_THE_APPROVAL, answer],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        output, _ = run.communicate(timeout=240)
    finally:
        run.kill()  # `dags test` waiting for a person ignores SIGTERM
    assert responder.returncode == 0, responder.stdout + responder.stderr + output[-4000:]
    assert "SUBJECT PatSnap: approve a run billed up to 300 units?" in responder.stdout
    assert run.returncode == 0, output[-5000:]
    states = task_states(tmp_path, "patsnap_spend_gate")
    assert states["approve"] == "success" and states["within_threshold"] == "skipped", states
    if answer == "Approve":
        assert states["fetch"] == "success", states
        assert asked(sandbox, "P026") == sorted(shipped_patents())
    else:
        assert states["fetch"] == "skipped", states
        assert sandbox.stats()["billed_units"] == 0 and asked(sandbox, "P026") == []
