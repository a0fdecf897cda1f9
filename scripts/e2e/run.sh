#!/usr/bin/env bash
# make e2e: a real Airflow 3 deployment on loopback (api-server, scheduler with LocalExecutor,
# dag-processor, triggerer; a throwaway PostgreSQL as the metadata DB; the PatSnap sandbox as the vendor), checked end
# to end by scripts/e2e/main.py. Needs Debian's chromium + chromium-driver for the UI part; selenium
# goes into its own small venv (.venv-e2e), so the pinned project venvs stay as they are.
#
# Artifacts (screenshots, every log, the pages fetched, summary.txt/json) land in .e2e-artifacts/.
# Exits non-zero when any check fails. Every process it starts is stopped by PID before it returns.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
REPO=$PWD
VENV=${VENV:-.venv}
TOOLS_VENV=$REPO/.venv-e2e
ARTIFACTS=$REPO/.e2e-artifacts
SELENIUM_VERSION=4.51.0
BUDGET_SECONDS=${E2E_BUDGET_SECONDS:-900}
export PIP_DISABLE_PIP_VERSION_CHECK=1
unset PYTHONDONTWRITEBYTECODE || true

start=$SECONDS
for tool in chromium chromedriver; do
    command -v "$tool" >/dev/null || {
        echo "e2e: '$tool' not found: apt-get install chromium chromium-driver" >&2
        exit 1
    }
done

if ! "$TOOLS_VENV/bin/python" -c "import selenium, sys; sys.exit(selenium.__version__ != '$SELENIUM_VERSION')" 2>/dev/null; then
    echo "== tools venv $TOOLS_VENV (selenium $SELENIUM_VERSION)"
    "$VENV/bin/python" -m venv --clear "$TOOLS_VENV"
    "$TOOLS_VENV/bin/python" -m pip install --quiet "selenium==$SELENIUM_VERSION"
fi

rm -rf "$ARTIFACTS"
mkdir -p "$ARTIFACTS"
echo "== make e2e: artifacts in $ARTIFACTS"
status=0
# The budget is a hard stop: SIGTERM makes main.py stop the deployment and write its summary.
timeout --signal=TERM --kill-after=60 "$BUDGET_SECONDS" \
    env -u AIRFLOW_HOME PYTHONPATH="$REPO" "$VENV/bin/python" -u scripts/e2e/main.py \
    --artifacts "$ARTIFACTS" --browser-python "$TOOLS_VENV/bin/python" || status=$?
echo "== make e2e: $( ((status == 0)) && echo passed || echo "FAILED (exit $status)") in $((SECONDS - start)) s;" \
    "summary: $ARTIFACTS/summary.txt, screenshots: $ARTIFACTS/screenshots/"
exit "$status"
