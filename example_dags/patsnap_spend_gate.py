"""A spend gate: estimate what a run would be billed, and above a threshold let a person approve it first.

Requires the pool ``patsnap_api``; create it before the first run (``make demo`` does)::

    airflow pools set patsnap_api 2 "PatSnap API: 2 slots x 2.5 qps = vendor QPS 5"

A run that fails on its ``dagrun_timeout`` with ``estimate`` or ``fetch`` still ``scheduled`` usually
means that pool is missing: Airflow fails no task whose pool does not exist, and only the scheduler's
log says why ("Tasks using non-existent pool 'patsnap_api' will not be scheduled"). Create the pool as
above and rerun.

``estimate`` calls nothing (``estimate_only=True``): it counts the patents the run would request once
``refresh_after`` has skipped the fresh ones, and so the most units the run could be billed
(``billed_units_at_most``). At or under the run's ``approve_above`` (a DAG param, 1000 by default) the
fetch goes ahead. Above it:

- **Airflow 3.1 and later**: the task ``approve`` (the standard provider's ``ApprovalOperator``) waits
  for a person: "Approve" or "Reject" in the UI (the task's Required Actions), or
  ``PATCH /api/v2/dags/patsnap_spend_gate/dagRuns/<run_id>/taskInstances/approve/-1/hitlDetails`` with
  ``{"chosen_options": ["Approve"], "params_input": {}}``. Approve runs the fetch; Reject, or no answer
  within a day, skips it and nothing is paid.
- **Airflow 2.11 and 3.0** have no approval task: ``approve`` fails, saying the estimate and the
  threshold, and nothing is paid. To go ahead, trigger the DAG again with a threshold that covers the
  estimate: ``airflow dags trigger patsnap_spend_gate -c '{"approve_above": 2000}'``.

``MAX_UNITS`` caps every run, approved or not: the fetch stops before a call that could pass it
(``max_billed_units``), and a rerun resumes where it stopped. Connections: ``patsnap_default`` and
``patsnap_warehouse`` (the table and the state ``refresh_after`` reads).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow import __version__ as airflow_version

from airflow_provider_patsnap.id_sources import FileIds
from airflow_provider_patsnap.operators.patsnap import PatsnapLegalInformationOperator

try:
    from airflow.sdk import DAG, task
    from airflow.sdk.exceptions import AirflowFailException
except ImportError:  # Airflow 2.11
    from airflow import DAG  # type: ignore[assignment]
    from airflow.decorators import task  # type: ignore[no-redef]
    from airflow.exceptions import AirflowFailException  # type: ignore[no-redef]

# Human-in-the-loop operators arrived with Airflow 3.1 (apache-airflow-providers-standard).
APPROVALS = tuple(int(part) for part in airflow_version.split(".")[:2]) >= (3, 1)
if APPROVALS:
    from airflow.providers.standard.operators.hitl import ApprovalOperator

PATENT_LIST = Path(__file__).parent / "data" / "patents.csv"  # shipped with the example
WAREHOUSE = "patsnap_warehouse"
POOL = "patsnap_api"
POOL_SLOTS = 2
VENDOR_QPS = 5.0
APPROVE_ABOVE = 1000  # units a run may spend without asking (the default of the DAG param)
MAX_UNITS = 20_000  # no run is billed more than this, approved or not
RUN_TIMEOUT = timedelta(days=2)  # covers the day an approval may wait; size it for your list

with DAG(
    dag_id="patsnap_spend_gate",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    is_paused_upon_creation=True,  # it calls a paid API: nothing runs until someone unpauses it
    dagrun_timeout=RUN_TIMEOUT,
    params={"approve_above": APPROVE_ABOVE},
    tags=["patsnap", "example"],
    doc_md=__doc__,
):
    # --8<-- [start:spend_gate]
    paid_run: dict[str, Any] = {
        "patent_numbers": FileIds(str(PATENT_LIST), column="patent_number"),
        "sql_conn_id": WAREHOUSE,
        "table": "patsnap_legal_gated",
        "refresh_after": "7d",
        "max_billed_units": MAX_UNITS,
        "pool": POOL,
        "qps": VENDOR_QPS / POOL_SLOTS,
    }
    estimate = PatsnapLegalInformationOperator(task_id="estimate", estimate_only=True, **paid_run)

    @task.branch
    def gate(estimate: dict[str, Any], params: dict[str, Any] | None = None) -> str:
        """Go on when the estimate is within the threshold; else ask for an approval."""
        units, threshold = estimate["billed_units_at_most"], int((params or {})["approve_above"])
        print(f"estimate: at most {units} billed units; approve_above={threshold}")
        return "within_threshold" if units <= threshold else "approve"

    @task
    def within_threshold() -> None:
        """Nothing to do: the branch that needs no approval."""

    if APPROVALS:
        approve = ApprovalOperator(
            task_id="approve",
            subject="PatSnap: approve a run billed up to {{ ti.xcom_pull(task_ids='estimate')['billed_units_at_most'] }} units?",
            body="Above approve_above={{ params.approve_above }} units. Reject (or no answer in a day) pays nothing.",
            defaults="Reject",
            response_timeout=timedelta(days=1),
        )
    else:

        @task(task_id="approve")
        def over_threshold(estimate: dict[str, Any], params: dict[str, Any] | None = None) -> None:
            units = estimate["billed_units_at_most"]
            raise AirflowFailException(
                f"the run would be billed up to {units} units, above approve_above="
                f"{(params or {})['approve_above']}: nothing was fetched. Airflow before 3.1 has no approval "
                "task; to go ahead, trigger the DAG again with a threshold that covers the estimate: "
                f"-c '{{\"approve_above\": {units}}}'"
            )

        approve = over_threshold(estimate.output)

    fetch = PatsnapLegalInformationOperator(
        task_id="fetch", trigger_rule="none_failed_min_one_success", **paid_run
    )
    go_ahead = within_threshold()
    gate(estimate.output) >> [go_ahead, approve]
    [go_ahead, approve] >> fetch
    # --8<-- [end:spend_gate]
