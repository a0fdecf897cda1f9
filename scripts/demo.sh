#!/usr/bin/env bash
# make demo: run the example DAG patsnap_enrichment against the local PatSnap sandbox, into a SQLite
# warehouse, and print how many rows landed in each table and how many times the sandbox answered
# "calling too fast" (67200002); then run patsnap_incremental_sync twice and print the units each run was
# billed, and the DAG scheduled on its table; then write the list's legal events to a Parquet file
# (scripts/demo_dags/patsnap_parquet_export.py) and read it with DuckDB. `make demo` puts the venv's bin
# on PATH (AIRFLOW=2 for Airflow 2.11).
#
# Everything runs under `airflow dags test`, which ignores pools and runs a DAG's tasks one after another,
# each at its per-task qps (the vendor QPS / the pool's slots): that alone keeps the demo within the QPS.
# Under a scheduler it is the pool patsnap_api that keeps tasks running at once within it (make e2e).
#
# Exits non-zero when a DAG run fails, when the sandbox answered any call with 67200002, or when the second
# patsnap_incremental_sync run was billed anything (refresh_after="7d" must skip what the first fetched).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD
PY=$(command -v python)

# A fresh AIRFLOW_HOME of its own each run; the rest of Airflow's settings come from scripts/airflow_env.py.
AIRFLOW_EXPORTS=$("$PY" scripts/airflow_env.py "$REPO/.airflow-home/demo" --shell)
eval "$AIRFLOW_EXPORTS"
rm -rf "$AIRFLOW_HOME"
mkdir -p "$AIRFLOW_HOME"
WAREHOUSE="$AIRFLOW_HOME/warehouse.db"
SANDBOX_LOG="$AIRFLOW_HOME/sandbox.log"
QPS=5  # the sandbox's limit and the connection's qps: the QPS PatSnap granted the client
POOL=patsnap_api
POOL_SLOTS=2  # the example DAGs run each PatSnap task at QPS / POOL_SLOTS in this pool

# --- sandbox in the background on a free port; its first stdout line says where ----------------------
"$PY" -u -m airflow_provider_patsnap.sandbox --port 0 --qps "$QPS" \
    --client-id demo-client --client-secret demo-secret >"$SANDBOX_LOG" 2>&1 &
SANDBOX_PID=$!
trap 'kill "$SANDBOX_PID" 2>/dev/null || true; wait "$SANDBOX_PID" 2>/dev/null || true' EXIT

BASE_URL=""
for _ in $(seq 100); do
    BASE_URL=$(sed -n '1s/^PatSnap sandbox listening on \(http[^ ]*\).*/\1/p' "$SANDBOX_LOG")
    [[ -n $BASE_URL ]] && break
    kill -0 "$SANDBOX_PID" 2>/dev/null || { cat "$SANDBOX_LOG" >&2; echo "demo: the sandbox did not start" >&2; exit 1; }
    sleep 0.1
done
[[ -n $BASE_URL ]] || { echo "demo: no address from the sandbox after 10 s" >&2; exit 1; }
echo "== sandbox: $BASE_URL (log: $SANDBOX_LOG)"

export AIRFLOW_CONN_PATSNAP_DEFAULT="{\"conn_type\": \"patsnap\", \"host\": \"$BASE_URL\", \"login\": \"demo-client\", \"password\": \"demo-secret\", \"extra\": {\"qps\": $QPS}}"
export AIRFLOW_CONN_PATSNAP_WAREHOUSE="{\"conn_type\": \"sqlite\", \"host\": \"$WAREHOUSE\"}"

# --- Airflow -------------------------------------------------------------------------------------------
echo "== airflow db migrate (AIRFLOW_HOME=$AIRFLOW_HOME)"
airflow db migrate >"$AIRFLOW_HOME/migrate.log" 2>&1 || { cat "$AIRFLOW_HOME/migrate.log" >&2; exit 1; }

# `airflow dags test` ignores pools; the pool is set as a deployment needs it (without it the example DAGs'
# PatSnap tasks stay scheduled), so these are the commands to copy.
echo "== airflow pools set $POOL $POOL_SLOTS (slots x per-task qps = QPS $QPS)"
airflow pools set "$POOL" "$POOL_SLOTS" "PatSnap API: $POOL_SLOTS slots x per-task qps = vendor QPS $QPS" \
    >>"$AIRFLOW_HOME/migrate.log" 2>&1 || { cat "$AIRFLOW_HOME/migrate.log" >&2; exit 1; }

echo "== airflow dags test patsnap_enrichment"
status=0
airflow dags test patsnap_enrichment "$(date -u +%Y-%m-%d)" >"$AIRFLOW_HOME/dags-test.log" 2>&1 || status=$?
if [[ $status -ne 0 ]]; then
    tail -n 60 "$AIRFLOW_HOME/dags-test.log" >&2
    echo "demo: the DAG run failed (exit $status); full log: $AIRFLOW_HOME/dags-test.log" >&2
    exit "$status"
fi

# --- incremental sync: a second run pays for nothing it already has ----------------------------------
sandbox_stat() {  # sandbox_stat KEY [KEY...]: a count from the sandbox's /_sandbox/stats (0 when absent)
    "$PY" -c 'import json, sys, urllib.request
value = json.load(urllib.request.urlopen(sys.argv[1] + "/_sandbox/stats", timeout=10))
for key in sys.argv[2:]:
    value = value.get(key, 0)
print(int(value))' "$BASE_URL" "$@"
}
run_dag() {  # run_dag DAG_ID DATE: airflow dags test, its log kept; exits on failure
    local log="$AIRFLOW_HOME/dags-test-$1-$2.log" code=0
    airflow dags test "$1" "$2" >"$log" 2>&1 || code=$?
    if [[ $code -ne 0 ]]; then
        tail -n 60 "$log" >&2
        echo "demo: $1 failed (exit $code); full log: $log" >&2
        exit "$code"
    fi
}
INCREMENTAL_BILLED=()
for day in "$(date -u -d yesterday +%Y-%m-%d)" "$(date -u +%Y-%m-%d)"; do
    echo "== airflow dags test patsnap_incremental_sync $day (sync, refresh_after=7d)"
    before=$(sandbox_stat billed_units)
    run_dag patsnap_incremental_sync "$day"
    INCREMENTAL_BILLED+=("$(( $(sandbox_stat billed_units) - before ))")
done
echo "== airflow dags test patsnap_incremental_report (scheduled on the synced table's Asset)"
run_dag patsnap_incremental_report "$(date -u +%Y-%m-%d)"

# --- Parquet: the same operators write typed Parquet to object storage; DuckDB reads it --------------
PARQUET_DIR="$AIRFLOW_HOME/parquet"
PARQUET_DAY=$(date -u +%Y-%m-%d)
echo "== airflow dags test patsnap_parquet_export $PARQUET_DAY (output_path=$PARQUET_DIR/legal/<ds>.parquet)"
parquet_start=$SECONDS
parquet_log="$AIRFLOW_HOME/dags-test-patsnap_parquet_export-$PARQUET_DAY.log"
code=0  # the same Airflow settings, but this DAG's own folder (scripts/airflow_env.py sets them)
PATSNAP_DEMO_OUTPUT="$PARQUET_DIR" "$PY" scripts/airflow_env.py "$AIRFLOW_HOME" \
    --dags-folder "$REPO/scripts/demo_dags" -- airflow dags test patsnap_parquet_export "$PARQUET_DAY" \
    >"$parquet_log" 2>&1 || code=$?
if [[ $code -ne 0 ]]; then
    tail -n 60 "$parquet_log" >&2
    echo "demo: patsnap_parquet_export failed (exit $code); full log: $parquet_log" >&2
    exit "$code"
fi
echo "   (the Parquet run took $((SECONDS - parquet_start)) s)"
PARQUET_FILE="$PARQUET_DIR/legal/$PARQUET_DAY.parquet"

# --- summary -----------------------------------------------------------------------------------------
"$PY" - "$WAREHOUSE" "$BASE_URL" <<'EOF'
import json
import sqlite3
import sys
import urllib.request

from airflow_provider_patsnap.endpoints import ENDPOINTS

path, sandbox = sys.argv[1], sys.argv[2]
with sqlite3.connect(path) as db:
    print(f"\n{'table':<32} {'rows':>7} {'patents':>8}")
    for endpoint in ENDPOINTS.values():
        rows, patents = db.execute(
            f"SELECT COUNT(*), COUNT(DISTINCT patent_id) FROM {endpoint.default_table}"
        ).fetchone()
        print(f"{endpoint.default_table:<32} {rows:>7} {patents:>8}")
with urllib.request.urlopen(f"{sandbox}/_sandbox/stats", timeout=10) as answer:
    stats = json.load(answer)
print(f"\nPatSnap calls: {stats['business_calls']}; rate-limit answers (67200002), each one a retry: "
      f"{stats['errors'].get('67200002', 0)}")
print(f"\nwarehouse: {path}\nopen it with: sqlite3 {path}")
EOF
echo "patsnap_incremental_sync billed units: first run ${INCREMENTAL_BILLED[0]}, second run ${INCREMENTAL_BILLED[1]} (patents fetched less than 7 days ago are skipped)"
"$PY" - "$PARQUET_FILE" <<'EOF'
import sys

import duckdb
import pyarrow.parquet as pq

path = sys.argv[1]
metadata = pq.ParquetFile(path).metadata
print(f"\nParquet: {path} ({metadata.num_rows} rows, {metadata.num_row_groups} row group(s))")
print(f"DuckDB> SELECT count(*), count(DISTINCT pn), min(event_date) FROM '{path}'")
print(duckdb.sql(f"SELECT count(*) AS rows, count(DISTINCT pn) AS patents, min(event_date) AS earliest FROM '{path}'"))
print(f"DuckDB> SELECT pn, source, event_date, event_code, event_desc FROM '{path}' ORDER BY pn, event_date LIMIT 5")
print(duckdb.sql(
    f"SELECT pn, source, event_date, event_code, event_desc FROM '{path}' ORDER BY pn, event_date LIMIT 5"
))
print(f"DuckDB> DESCRIBE SELECT event_date, event_desc FROM '{path}'")
print(duckdb.sql(f"SELECT column_name, column_type FROM (DESCRIBE SELECT event_date, event_desc FROM '{path}')"))
if duckdb.sql(f"SELECT count(*) FROM '{path}'").fetchall()[0][0] != metadata.num_rows or not metadata.num_rows:
    sys.exit("demo: DuckDB and pyarrow disagree on the Parquet file's rows, or it has none")
EOF
echo "DAG log: $AIRFLOW_HOME/dags-test.log"

# --- what the demo promises --------------------------------------------------------------------------
failures=()
rate_limited=$(sandbox_stat errors 67200002)
if ((rate_limited != 0)); then
    failures+=("the sandbox answered $rate_limited calls with 67200002 (calling too fast): the tasks called faster than QPS $QPS (sandbox log: $SANDBOX_LOG)")
fi
if ((INCREMENTAL_BILLED[1] != 0)); then
    failures+=("the second patsnap_incremental_sync run was billed ${INCREMENTAL_BILLED[1]} units, not 0: refresh_after=\"7d\" should have skipped every patent the first run fetched (log: $AIRFLOW_HOME/dags-test-patsnap_incremental_sync-*.log)")
fi
if ((${#failures[@]})); then
    printf 'demo: FAILED: %s\n' "${failures[@]}" >&2
    exit 1
fi
echo "== make demo: passed (0 rate-limit answers; the second incremental run billed 0 units)"
