#!/usr/bin/env bash
# Create / update the project's virtual environments. Called by the Makefile; safe to re-run.
#
#   scripts/bootstrap.sh venv    VENV_DIR CONSTRAINTS_FILE [REQUIREMENT...]
#       Create VENV_DIR (if needed) and install `-e .[dev]` (+ any REQUIREMENT) pinned by
#       CONSTRAINTS_FILE, then touch VENV_DIR/.installed (the Makefile's stamp).
#   scripts/bootstrap.sh resolve AIRFLOW_VERSION CONSTRAINTS_FILE [REQUIREMENT...]
#       Resolve apache-airflow==AIRFLOW_VERSION + `.[dev]` (+ any REQUIREMENT, e.g. a cap an old
#       Airflow line forgot to declare) from scratch in a throw-away venv and write the frozen result
#       to CONSTRAINTS_FILE (official constraint files live on GitHub, which these machines cannot
#       reach, so we commit our own).
#   scripts/bootstrap.sh uv
#       Print the path of a usable `uv` (installing it into .venv-tools if needed); exit 1 if none.
#
# uv is used when it can be had (PATH, or `pip install uv` into .venv-tools); otherwise plain
# `python3 -m venv` + pip. Never `uv venv -p 3.12`: uv would try to download an interpreter.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PYTHON=${PYTHON:-$(command -v python3)}
TOOLS_VENV=$ROOT/.venv-tools
export UV_COMPILE_BYTECODE=1          # else every `airflow` start pays ~5 s compiling
unset PYTHONDONTWRITEBYTECODE || true
export UV_NO_PROGRESS=1
export PIP_DISABLE_PIP_VERSION_CHECK=1

log() { printf '[bootstrap] %s\n' "$*" >&2; }

find_uv() {
    # A pyenv shim can exist for a uv that the current interpreter lacks: check that it runs.
    local candidate
    for candidate in "${UV:-}" "$(command -v uv 2>/dev/null || true)" "$TOOLS_VENV/bin/uv"; do
        if [[ -n "$candidate" && -x "$candidate" ]] && "$candidate" --version >/dev/null 2>&1; then
            echo "$candidate"; return 0
        fi
    done
    log "uv not found: installing it into $TOOLS_VENV"
    if "$PYTHON" -m venv "$TOOLS_VENV" >&2 \
        && "$TOOLS_VENV/bin/python" -m pip install --quiet uv >&2 \
        && [[ -x "$TOOLS_VENV/bin/uv" ]]; then
        echo "$TOOLS_VENV/bin/uv"; return 0
    fi
    log "could not install uv; falling back to python3 -m venv + pip"
    return 1
}

make_venv() {
    local venv=$1 constraints=$2 uv
    shift 2
    [[ -f "$constraints" ]] || { log "missing constraints file: $constraints"; exit 1; }
    local start=$SECONDS
    if uv=$(find_uv); then
        if [[ ! -x "$venv/bin/python" ]]; then
            log "creating $venv with $uv ($PYTHON)"
            "$uv" venv --quiet --python "$PYTHON" "$venv"
        fi
        log "installing -e .[dev] into $venv (constraints: $constraints)"
        "$uv" pip install --quiet --python "$venv/bin/python" -c "$constraints" -e ".[dev]" "$@"
    else
        if [[ ! -x "$venv/bin/python" ]]; then
            log "creating $venv with $PYTHON -m venv"
            "$PYTHON" -m venv "$venv"
        fi
        log "installing -e .[dev] into $venv with pip (constraints: $constraints)"
        "$venv/bin/python" -m pip install --quiet -c "$constraints" -e ".[dev]" "$@"
    fi
    "$venv/bin/python" - <<'EOF'
import importlib.metadata as md
print(f"[bootstrap] apache-airflow {md.version('apache-airflow')}, "
      f"airflow-provider-patsnap {md.version('airflow-provider-patsnap')}")
EOF
    touch "$venv/.installed"
    log "$venv ready in $((SECONDS - start)) s"
}

resolve() {
    local airflow_version=$1 out=$2 uv tmp
    shift 2
    uv=$(find_uv) || { log "resolving constraints needs uv"; exit 1; }
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' RETURN
    "$uv" venv --quiet --python "$PYTHON" "$tmp/venv"
    "$uv" pip install --quiet --python "$tmp/venv/bin/python" "apache-airflow==$airflow_version" -e ".[dev]" "$@"
    {
        echo "# Resolved with uv for Python 3.11: apache-airflow==$airflow_version + airflow-provider-patsnap[dev]${*:+ + $*}."
        echo "# Regenerate: make constraints   (do not edit by hand)"
        "$uv" pip freeze --quiet --python "$tmp/venv/bin/python" --exclude-editable
    } > "$out.tmp"
    mv "$out.tmp" "$out"
    log "wrote $out ($(grep -vc '^#' "$out") pins)"
}

case "${1:-}" in
    venv) shift; make_venv "$@" ;;
    resolve) shift; resolve "$@" ;;
    uv) find_uv ;;
    *) echo "usage: $0 venv VENV_DIR CONSTRAINTS [REQUIREMENT...] | resolve AIRFLOW_VERSION OUT [REQUIREMENT...] | uv" >&2; exit 2 ;;
esac
