#!/usr/bin/env bash
# make bench: every benchmark in about 18 minutes, then benchmarks/RESULTS.md.
#
#   bash benchmarks/run.sh          # the sandbox's capacity; QPS 10 and 50 at latency 5 s and 5-10 s; one
#                                   # task at QPS 100 into PostgreSQL and NDJSON, beside the asyncio reference
#                                   # into PostgreSQL; CPU; memory at 1 M; imports
#   FULL=1 bash benchmarks/run.sh   # make bench-full: QPS 10, 20, 50 and 100, and the reference into NDJSON
#                                   # at QPS 100 too (about 25 minutes)
#
# Settings: CAPACITY_SECONDS, QPS_LIST, LATENCIES, SEND_SECONDS, TASK_QPS, TASK_SEND_SECONDS, TASK_RUNS,
# CPU_PATENTS, MEMORY_PATENTS, SQL_ROWS, IMPORT_RUNS.
# Uses the python on PATH (make bench puts .venv/bin first). Each script prints PASS/FAIL lines and
# writes its figures as JSON; results.py turns them into RESULTS.md. Exit status 1 if a goal is missed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python}
TASK_RUNS_DEFAULT="provider:postgres reference:postgres provider:ndjson"
if [[ -n "${FULL:-}" ]]; then
    QPS_LIST=${QPS_LIST:-"10 20 50 100"}
    TASK_RUNS=${TASK_RUNS:-"$TASK_RUNS_DEFAULT reference:ndjson"}
else
    QPS_LIST=${QPS_LIST:-"10 50"}
    TASK_RUNS=${TASK_RUNS:-"$TASK_RUNS_DEFAULT"}
fi
LATENCIES=${LATENCIES:-"5 5-10"}
CAPACITY_SECONDS=${CAPACITY_SECONDS:-60}
SEND_SECONDS=${SEND_SECONDS:-25}
TASK_QPS=${TASK_QPS:-100}
TASK_SEND_SECONDS=${TASK_SEND_SECONDS:-30}
CPU_PATENTS=${CPU_PATENTS:-50000}
MEMORY_PATENTS=${MEMORY_PATENTS:-1000000}
SQL_ROWS=${SQL_ROWS:-500000}
IMPORT_RUNS=${IMPORT_RUNS:-9}
unset PYTHONDONTWRITEBYTECODE || true  # a DAG parse reads bytecode: so does the import figure

OUT=$(mktemp -d "${TMPDIR:-/tmp}/patsnap-bench.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
START=$SECONDS
rc=0

# First: the figures below are the clients' only if the sandbox itself keeps up with the highest rate.
echo "== sandbox capacity (QPS 100 x 100 patents, latency 5 s, ~${CAPACITY_SECONDS} s of evenly spaced calls)"
timeout 600 "$PYTHON" benchmarks/sandbox_capacity.py --qps 100 --latency 5 --send-seconds "$CAPACITY_SECONDS" \
    --json "$OUT/capacity.json" || rc=1

echo "== throughput at the vendor's latency (${LATENCIES} s; QPS ${QPS_LIST}; ~${SEND_SECONDS} s of calls a run)"
# shellcheck disable=SC2086 # word splitting of the lists is wanted
timeout 2400 "$PYTHON" benchmarks/throughput.py --qps $QPS_LIST --latency $LATENCIES \
    --send-seconds "$SEND_SECONDS" --workdir "$OUT/throughput" --json "$OUT/throughput.json" || rc=1

echo "== one task at QPS ${TASK_QPS}, latency 5 s (${TASK_RUNS}; ~${TASK_SEND_SECONDS} s of calls a run)"
# shellcheck disable=SC2086 # word splitting of the list is wanted
timeout 900 "$PYTHON" benchmarks/task_throughput.py --qps "$TASK_QPS" --latency 5 \
    --send-seconds "$TASK_SEND_SECONDS" --runs $TASK_RUNS --workdir "$OUT/task" --json "$OUT/task.json" || rc=1

echo "== client CPU per patent (${CPU_PATENTS} patents of P026, latency 0, no QPS limit; beside the asyncio reference)"
timeout 900 "$PYTHON" benchmarks/cpu_per_patent.py --patents "$CPU_PATENTS" --workdir "$OUT/cpu" \
    --json "$OUT/cpu.json" || rc=1

echo "== PostgreSQL and SQLite write paths (${SQL_ROWS} rows)"
timeout 900 "$PYTHON" benchmarks/sql_write_paths.py --rows "$SQL_ROWS" --json "$OUT/sql.json" || rc=1

echo "== memory (${MEMORY_PATENTS} patents into SQLite)"
timeout 1200 "$PYTHON" benchmarks/memory.py --patents "$MEMORY_PATENTS" --workdir "$OUT/memory" \
    --json "$OUT/memory.json" || rc=1

echo "== import cost (best of ${IMPORT_RUNS} fresh interpreters)"
timeout 600 "$PYTHON" benchmarks/import_cost.py --runs "$IMPORT_RUNS" --json "$OUT/import.json" || rc=1

"$PYTHON" benchmarks/results.py --dir "$OUT" --seconds $((SECONDS - START)) --output benchmarks/RESULTS.md || rc=1
echo "== wrote benchmarks/RESULTS.md in $((SECONDS - START)) s; exit $rc"
exit $rc
