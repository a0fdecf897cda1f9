#!/usr/bin/env bash
# make bench: every benchmark in a few minutes, then benchmarks/RESULTS.md.
#
#   bash benchmarks/run.sh                    # defaults: latency 1 s, QPS 10, 20,000 / 2,000 / 200,000 patents
#   LATENCY=0.5 QPS=20 bash benchmarks/run.sh # other settings (PATENTS, BASELINE_PATENTS, MEMORY_PATENTS too)
#
# Uses the python on PATH (make bench puts .venv/bin first). Each script prints PASS/FAIL lines and
# writes its figures as JSON; results.py turns them into RESULTS.md. Exit status 1 if a target is missed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python}
LATENCY=${LATENCY:-1}
QPS=${QPS:-10}
PATENTS=${PATENTS:-20000}
BASELINE_PATENTS=${BASELINE_PATENTS:-2000}
MEMORY_PATENTS=${MEMORY_PATENTS:-200000}
IMPORT_RUNS=${IMPORT_RUNS:-9}
unset PYTHONDONTWRITEBYTECODE || true

OUT=$(mktemp -d "${TMPDIR:-/tmp}/patsnap-bench.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
START=$SECONDS
rc=0

echo "== throughput + baseline (sandbox latency ${LATENCY} s, QPS ${QPS}, ${PATENTS} / ${BASELINE_PATENTS} patents)"
timeout 900 "$PYTHON" benchmarks/throughput.py --latency "$LATENCY" --qps "$QPS" --patents "$PATENTS" \
    --baseline-patents "$BASELINE_PATENTS" --workdir "$OUT/throughput" --json "$OUT/throughput.json" || rc=1

echo "== memory (${MEMORY_PATENTS} patents into SQLite)"
timeout 900 "$PYTHON" benchmarks/memory.py --patents "$MEMORY_PATENTS" --workdir "$OUT/memory" \
    --json "$OUT/memory.json" || rc=1

echo "== import cost (best of ${IMPORT_RUNS} fresh interpreters)"
timeout 600 "$PYTHON" benchmarks/import_cost.py --runs "$IMPORT_RUNS" --json "$OUT/import.json" || rc=1

"$PYTHON" benchmarks/results.py --dir "$OUT" --seconds $((SECONDS - START)) --output benchmarks/RESULTS.md || rc=1
echo "== wrote benchmarks/RESULTS.md in $((SECONDS - START)) s; exit $rc"
exit $rc
