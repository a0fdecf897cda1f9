"""Metrics through Airflow's own StatsD client, on a real `airflow dags test`: what a UDP listener on
loopback receives adds up to what the sandbox billed."""

from __future__ import annotations

import json
import re
import socket
from collections import defaultdict
from pathlib import Path

from airflow_provider_patsnap.observability import METRIC_NAMES
from airflow_provider_patsnap.sandbox import Sandbox, SandboxConfig
from tests.helpers import airflow, airflow_env


def received(sock: socket.socket) -> list[str]:
    """Every StatsD line waiting on ``sock`` (a packet may hold several, one per line)."""
    sock.setblocking(False)
    lines: list[str] = []
    while True:
        try:
            packet = sock.recv(65535)
        except BlockingIOError:
            return lines
        lines += packet.decode("utf-8").splitlines()


def test_the_billed_units_counter_adds_up_to_what_the_sandbox_billed(tmp_path: Path) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    with Sandbox(SandboxConfig(fault_rate=0.5, faults=("busy", "qps"), seed=7)) as sandbox:
        env = airflow_env(
            tmp_path / "home",
            Path(__file__).parent / "dags",
            AIRFLOW_CONN_PATSNAP_DEFAULT=sandbox.connection_json(qps=0),
            AIRFLOW_CONN_METRICS_WAREHOUSE=json.dumps(
                {"conn_type": "sqlite", "host": str(tmp_path / "w.db")}
            ),
            AIRFLOW__METRICS__STATSD_ON="True",
            AIRFLOW__METRICS__STATSD_HOST="127.0.0.1",
            AIRFLOW__METRICS__STATSD_PORT=str(listener.getsockname()[1]),
            AIRFLOW__METRICS__STATSD_PREFIX="airflow",
            # Tags travel in the name (airflow.patsnap.calls,endpoint=P026,...:1|c): shown and checked.
            AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED="True",
        )
        run = airflow(["dags", "test", "patsnap_metrics", "2024-06-01"], env)
        ledger = sandbox.stats()
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    sums: dict[str, float] = defaultdict(float)
    tags: dict[str, set[str]] = defaultdict(set)
    for line in received(listener):
        match = re.fullmatch(r"airflow\.(patsnap\.[a-z_.]+)((?:,[^:]+)?):([\d.]+)\|(c|ms|g)(?:\|.*)?", line)
        if match:
            name, tag_text, value = match[1], match[2], float(match[3])
            sums[name] += value
            tags[name].update(tag_text.lstrip(",").split(",") if tag_text else [])
    listener.close()
    assert sums["patsnap.billed_units"] == ledger["billed_units"] > 0  # to the unit
    assert sums["patsnap.patents_requested"] == 250
    assert sums["patsnap.calls"] > 3 and sums["patsnap.retries"] >= 1  # faults were drawn, and retried
    assert sums["patsnap.rate_limited"] + sums["patsnap.errors"] >= 1
    assert sums["patsnap.rows_written"] > 0 and "patsnap.call_duration" in sums
    assert {"endpoint=P026", "dag_id=patsnap_metrics", "task_id=legal"} <= tags["patsnap.billed_units"]
    assert set(sums) <= set(METRIC_NAMES)
