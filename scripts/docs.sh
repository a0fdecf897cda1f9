#!/usr/bin/env bash
# The documentation site (MkDocs, strict). Called by `make docs`; safe to re-run.
#
#   scripts/docs.sh venv          create/update .venv-docs from constraints-docs.txt (not the test venvs:
#                                 the docs read the package's source statically and need no Airflow)
#   scripts/docs.sh build         mkdocs build --strict into site/
#   scripts/docs.sh check [DIR]   the built site in headless Chromium: no code block or code span cut off
#                                 (scripts/docs_layout.py; screenshots into DIR, default .docs-layout/)
#   scripts/docs.sh screenshot F  the built home page, rendered by headless Chromium, into the PNG F
#   scripts/docs.sh resolve       re-resolve constraints-docs.txt from the newest releases
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV=.venv-docs
PYTHON=${PYTHON:-$(command -v python3)}
export UV_NO_PROGRESS=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Top-level requirements; every version, theirs and their dependencies', is pinned in constraints-docs.txt.
# selenium drives Debian's chromium for `check` (the version scripts/e2e/run.sh uses).
REQUIREMENTS=(mkdocs mkdocs-material "mkdocstrings[python]" pymdown-extensions "selenium==4.51.0")

log() { printf '[docs] %s\n' "$*" >&2; }

install() {  # install VENV_DIR [pip args...]: into a fresh or existing venv, with uv when there is one
    local venv=$1 uv
    shift
    if uv=$(bash scripts/bootstrap.sh uv 2>/dev/null); then
        [[ -x "$venv/bin/python" ]] || "$uv" venv --quiet --python "$PYTHON" "$venv"
        "$uv" pip install --quiet --python "$venv/bin/python" "$@"
    else
        [[ -x "$venv/bin/python" ]] || "$PYTHON" -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet "$@"
    fi
}

case "${1:-}" in
    venv)
        install "$VENV" -c constraints-docs.txt "${REQUIREMENTS[@]}"
        touch "$VENV/.installed"
        log "$VENV ready: mkdocs $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("mkdocs"))')"
        ;;
    build)
        # Not -q: strict mode counts the warnings it logs, and -q would drop broken links and anchors.
        NO_MKDOCS_2_WARNING=1 "$VENV/bin/mkdocs" build --strict --clean
        log "site/ built; open site/index.html"
        ;;
    check)
        out=${2:-.docs-layout}
        [[ -f site/index.html ]] || { log "no site/index.html: run make docs first"; exit 1; }
        if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
            # CI installs both (.ci/run); a laptop without them still gets the strict build.
            if [[ -n ${CI:-} ]]; then log "check: chromium and chromedriver are needed"; exit 1; fi
            log "check skipped: apt-get install chromium chromium-driver to run it"
            exit 0
        fi
        rm -rf "$out"
        "$VENV/bin/python" scripts/docs_layout.py --site site --out "$out"
        ;;
    screenshot)
        out=${2:?usage: scripts/docs.sh screenshot OUT.png}
        [[ -f site/index.html ]] || { log "no site/index.html: run make docs first"; exit 1; }
        chromium=$(command -v chromium || command -v chromium-browser) || { log "chromium not found"; exit 1; }
        profile=$(mktemp -d)
        port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        "$PYTHON" -m http.server "$port" --bind 127.0.0.1 --directory site >/dev/null 2>&1 &
        server=$!
        trap 'kill "$server" 2>/dev/null || true; rm -rf "$profile"' EXIT
        for _ in $(seq 50); do
            "$PYTHON" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/index.html')" \
                2>/dev/null && break
            sleep 0.1
        done
        "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
            --disable-background-networking --disable-component-update --disable-sync \
            --user-data-dir="$profile" --window-size=1280,900 --screenshot="$PWD/$out" \
            "http://127.0.0.1:$port/index.html" 2>/dev/null
        log "wrote $out"
        ;;
    resolve)
        tmp=$(mktemp -d)
        trap 'rm -rf "$tmp"' EXIT
        install "$tmp/venv" "${REQUIREMENTS[@]}"
        {
            echo "# The docs venv (.venv-docs), resolved for Python 3.11. Regenerate: bash scripts/docs.sh resolve"
            "$tmp/venv/bin/python" -m pip freeze --quiet 2>/dev/null \
                || "$(bash scripts/bootstrap.sh uv)" pip freeze --quiet --python "$tmp/venv/bin/python"
        } >constraints-docs.txt.tmp
        mv constraints-docs.txt.tmp constraints-docs.txt
        log "wrote constraints-docs.txt ($(grep -vc '^#' constraints-docs.txt) pins)"
        ;;
    *) echo "usage: $0 venv | build | check [DIR] | screenshot OUT.png | resolve" >&2; exit 2 ;;
esac
