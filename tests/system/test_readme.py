"""README.md and docs/getting-started.md run as written, in order, on a fresh machine, against the sandbox.

The fresh machine is the session's ``fresh_venv``: a new venv where the README's install block ran as
written (tests/release.py, with CI's pins appended as the README says), and a new user whose ``HOME`` is
empty and who has no ``AIRFLOW_*`` variable, so Airflow uses its defaults (``~/airflow``). Every other
block of the getting-started page then runs in one bash session, in the page's order, from the clone the
wheel was built in: ``bash`` blocks as they are, a ``python`` block with a ``title`` saved at that path,
and each ``$ command`` of a ``console`` block with its standard output compared to the lines the page
shows under it. The README's blocks are the page's, text for text and in the same order, so this one run
is the README's too.

One thing is changed: the sandbox's port ``8085`` becomes a free one, so the test can run beside others.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from airflow_provider_patsnap.connection import parse_connection
from tests.helpers import REPO_ROOT, free_port
from tests.release import Block, FreshVenv, fenced_blocks, readme_install_block

README = REPO_ROOT / "README.md"
PAGE = REPO_ROOT / "docs" / "getting-started.md"
DOCS_PORT = "8085"
#: Blocks not run here, and why.
NOT_RUN = {
    "clone": "`make demo` and `make test` are CI stages of their own (.ci/run)",
    "account": "needs a PatSnap account: its connection JSON is parsed by the provider instead",
}

pytestmark = pytest.mark.timeout(1800)  # the first test of a session builds and installs the wheel


def kind(block: Block) -> str:
    """What the test does with a block; a block of an unknown kind fails the test until it has one."""
    if block.lang == "bash" and "python -m build" in block.body:
        return "install"
    if "make demo" in block.body:
        return "clone"
    if "connect.patsnap.com" in block.body:
        return "account"
    if block.lang == "python" and block.title:
        return "file"
    if block.lang in ("bash", "console"):
        return "run"
    raise AssertionError(f"a {block.lang!r} block this test does not know how to run: {block.body[:200]!r}")


def test_the_readme_shows_the_getting_started_commands_in_the_same_order() -> None:
    readme = [block for block in fenced_blocks(README) if kind(block) not in NOT_RUN]
    page = [block for block in fenced_blocks(PAGE) if kind(block) not in NOT_RUN]
    assert readme and page[: len(readme)] == readme, "the README's commands are the page's first ones"
    assert readme[0] == readme_install_block() == page[0]  # what the fresh venv ran


def test_the_account_connection_shown_is_a_valid_patsnap_connection() -> None:
    """The README's connection to a real account cannot run here; the provider reads it as written."""
    from airflow.models.connection import Connection

    [block] = [block for block in fenced_blocks(README) if kind(block) == "account"]
    exported = re.search(r"AIRFLOW_CONN_PATSNAP_DEFAULT='(.*?)'", block.body, re.DOTALL)
    assert exported, block.body
    fields = json.loads(exported[1])
    extra = json.dumps(fields.pop("extra"))
    settings = parse_connection(Connection(conn_id="patsnap_default", extra=extra, **fields))
    assert settings.base_url == "https://connect.patsnap.com" and settings.qps == 5
    assert "AIRFLOW__CORE__TEST_CONNECTION=Enabled airflow connections test patsnap_default" in block.body


def script_of(blocks: list[Block], port: int, outputs: Path) -> tuple[str, list[tuple[str, list[str]]]]:
    """One bash script running ``blocks`` in order; and each console command with the lines it must print."""
    lines = [
        "set -euo pipefail",
        "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT",  # the sandbox started in the background
    ]
    expected: list[tuple[str, list[str]]] = []
    for block in blocks:
        body = block.body.replace(DOCS_PORT, str(port))
        if kind(block) == "file":
            target = block.title.replace("~", "$HOME", 1)
            lines += [f'mkdir -p "$(dirname "{target}")"', f"cat > \"{target}\" <<'PATSNAP_BLOCK_END'"]
            lines += [body.rstrip("\n"), "PATSNAP_BLOCK_END"]
        elif block.lang == "bash":
            lines.append(body)
        else:
            for chunk in re.split(r"^\$ ", body, flags=re.MULTILINE)[1:]:
                command, *shown = chunk.rstrip("\n").split("\n")
                out = outputs / f"{len(expected)}.out"
                err = out.with_suffix(".err")  # what the terminal shows besides (Airflow 2.11's warnings)
                lines.append(
                    f"{{ {command} ; }} > {shlex.quote(str(out))} 2> {shlex.quote(str(err))} "
                    f"|| {{ echo {shlex.quote('FAILED: ' + command)}; tail -n 60 {shlex.quote(str(out))} "
                    f"{shlex.quote(str(err))}; exit 1; }}"
                )
                expected.append((command, shown))
    return "\n".join(lines) + "\n", expected


def test_readme_and_getting_started_run_as_written(fresh_venv: FreshVenv, tmp_path: Path) -> None:
    blocks = [block for block in fenced_blocks(PAGE) if kind(block) not in NOT_RUN]
    assert kind(blocks[0]) == "install"  # the fresh_venv fixture ran it, as written
    script, expected = script_of(blocks[1:], free_port(), tmp_path)
    started = time.monotonic()
    run = subprocess.run(
        ["bash", "-c", script],
        cwd=fresh_venv.clone,
        env=fresh_venv.user_env,
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
    )
    took = time.monotonic() - started
    assert run.returncode == 0, f"after {took:.0f} s:\n{run.stdout[-6000:]}\n{run.stderr[-6000:]}"
    for number, (command, shown) in enumerate(expected):
        printed = (tmp_path / f"{number}.out").read_text(encoding="utf-8").rstrip("\n").split("\n")
        assert [line.rstrip() for line in printed] == [line.rstrip() for line in shown], command
    assert Path(fresh_venv.user_env["HOME"], "warehouse.db").is_file()
    assert not any(key.startswith("AIRFLOW") for key in fresh_venv.user_env)  # Airflow's defaults
    print(f"README and getting started ran as written in {took:.0f} s")
