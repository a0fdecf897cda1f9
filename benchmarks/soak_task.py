"""The soak's task process: one operator run, made as Airflow's task runner makes it.

    python benchmarks/soak_task.py SPEC.json

The spec (a :class:`TaskSpec` as JSON) says which operator to run and where its files go. Every log
record (urllib3 DEBUG included) is written, unmasked, to ``spec.log``; each token the sandbox issues is
appended to ``spec.tokens`` for the driver's leak scan; the outcome goes to ``spec.summary`` as JSON.
A SIGTERM calls ``op.on_kill()``, as Airflow's task runner does (``_on_term``), and the moment it
returned is written to ``spec.stopped``. Exit status 0 when ``execute`` returned, 1 when it raised.

``spec.clock_offset`` puts the operators' clock (``operators._batch.utc_now``: row times, history validity,
freshness) that many seconds ahead of the host's, as on a worker whose clock is wrong. This wrapper
moves it, not the package.

Imports of the provider stay inside functions: the driver imports :class:`TaskSpec` without Airflow.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

CONN_ID = "patsnap_soak"


@dataclass
class TaskSpec:
    """What one task process runs. ``kind`` ``data``: a data operator; ``report``: the report create."""

    kind: str
    log: str
    tokens: str
    summary: str
    stopped: str
    # data runs
    endpoint: str = "P026"
    id_ranges: list[tuple[int, int]] = field(default_factory=list)  # (first patent index, count)
    sql_conn_id: str = ""
    table: str = ""
    write_mode: str = ""  # "" : the operator's default (sync)
    refresh_after: str = ""  # "" : none
    clock_offset: float = 0.0  # seconds the operators' clock is ahead of the host's
    # report runs
    patent_number: str = ""
    state_path: str = ""  # the task-state store, kept in a file so the next try (process) sees it
    # runs started together: ``ready`` is written once the operator is built, ``execute`` waits for ``gate``
    ready: str = ""
    gate: str = ""

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)), encoding="utf-8")

    @classmethod
    def read(cls, path: str) -> TaskSpec:
        return cls(**json.loads(Path(path).read_text(encoding="utf-8")))


class FileTaskStateStore:
    """Airflow 3.3's task state store as a JSON file: it survives a retry, which is a new process."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.values: dict[str, Any] = (
            json.loads(self.path.read_text(encoding="utf-8")) if self.path.exists() else {}
        )

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any, **_: Any) -> None:
        self.values[key] = value
        self._save()

    def delete(self, key: str) -> None:
        self.values.pop(key, None)
        self._save()

    def _save(self) -> None:
        self.path.write_text(json.dumps(self.values), encoding="utf-8")


class SoakTaskInstance:
    """What the report operator asks of a task instance: its XCom, and (through Airflow 3.3's
    ResumableJobMixin, which tags its metrics with them) its stats tags."""

    stats_tags: dict[str, str] = {}

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


def log_everything(path: str) -> None:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(threadName)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in ("urllib3", "urllib3.connectionpool", "airflow", "airflow.task", "airflow_provider_patsnap"):
        logging.getLogger(name).setLevel(logging.DEBUG)


def record_issued_tokens(path: str) -> None:
    """The tokens the sandbox hands out are needed for the leak scan: keep them beside the logs."""
    from airflow_provider_patsnap.hooks._transport import Transport

    fetch_token = Transport.fetch_token

    def recording_fetch_token(self: Transport) -> tuple[str, float]:
        token, ttl = fetch_token(self)
        with open(path, "a", encoding="utf-8") as out:
            out.write(token + "\n")
        return token, ttl

    Transport.fetch_token = recording_fetch_token  # type: ignore[method-assign]


def stop_on_sigterm(operator: Any, stopped: str) -> None:
    """Like Airflow's task runner: SIGTERM calls ``on_kill`` and lets ``execute`` end by itself."""

    def on_term(signum: int, frame: Any) -> None:
        operator.on_kill()
        Path(stopped).write_text(json.dumps({"on_kill_returned": time.time()}), encoding="utf-8")

    signal.signal(signal.SIGTERM, on_term)


def wait_for_the_others(ready: str, gate: str) -> None:
    """Say this process is ready, then wait until every process started with it is."""
    Path(ready).touch()
    while not os.path.exists(gate):
        time.sleep(0.01)


def data_operator(spec: TaskSpec) -> Any:
    from common import operator_class, patent_numbers

    ids = [number for start, count in spec.id_ranges for number in patent_numbers(count, start=start)]
    options: dict[str, Any] = {"write_mode": spec.write_mode or None}
    if spec.refresh_after:
        options["refresh_after"] = spec.refresh_after
    return operator_class(spec.endpoint)(
        task_id="soak",
        patent_numbers=ids,
        patsnap_conn_id=CONN_ID,
        sql_conn_id=spec.sql_conn_id,
        table=spec.table,
        **options,
    )


def shift_the_operators_clock(seconds: float) -> None:
    """The operators' clock ``seconds`` ahead of the host's (behind when negative)."""
    from airflow_provider_patsnap.operators import _batch

    host_clock = _batch.utc_now
    _batch.utc_now = lambda: host_clock() + timedelta(seconds=seconds)


def report_operator(spec: TaskSpec) -> Any:
    from airflow_provider_patsnap.operators.report import PatsnapCreateValueReportOperator

    return PatsnapCreateValueReportOperator(
        task_id="soak_report",
        patent_number=spec.patent_number,
        patsnap_conn_id=CONN_ID,
        wait_for_completion=True,
        deferrable=False,
        poll_interval=0.5,
        timeout=60,
    )


def run(spec: TaskSpec) -> int:
    record_issued_tokens(spec.tokens)
    if spec.clock_offset:
        shift_the_operators_clock(spec.clock_offset)
    operator = data_operator(spec) if spec.kind == "data" else report_operator(spec)
    log_everything(spec.log)  # after Airflow is imported: Airflow 2 replaces the root's handlers then
    stop_on_sigterm(operator, spec.stopped)
    ti = SoakTaskInstance()
    context: dict[str, Any] = {"ti": ti}
    if spec.kind == "report":
        context["task_state_store"] = FileTaskStateStore(spec.state_path)
    if spec.gate:
        wait_for_the_others(spec.ready, spec.gate)
    outcome: dict[str, Any] = {"started_at": time.time()}
    try:
        result = operator.execute(context=context)
    except Exception as err:
        logging.getLogger("soak").exception("execute raised")
        outcome.update(error_type=type(err).__name__, error=str(err))
    else:
        outcome.update(result if isinstance(result, dict) else {"result": result})
        if spec.kind == "report":
            # The operator keeps the presigned link nowhere; the secret scan needs to know what to look for.
            from airflow_provider_patsnap.hooks.patsnap import PatsnapHook

            outcome["download_url"] = PatsnapHook(CONN_ID).get_report_status(str(result))["download_url"]
    outcome["ended_at"] = time.time()
    outcome["seconds"] = round(outcome["ended_at"] - outcome["started_at"], 1)
    Path(spec.summary).write_text(json.dumps(outcome), encoding="utf-8")
    return 1 if "error_type" in outcome else 0


if __name__ == "__main__":
    sys.exit(run(TaskSpec.read(sys.argv[1])))
