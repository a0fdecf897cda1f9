"""The pytest recipe in docs/sandbox.md runs as written, in an empty project, with the shipped plugin."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from scripts.airflow_env import airflow_env
from tests.helpers import REPO_ROOT

TITLED_BLOCK = re.compile(r'``` \{ \.python title="(?P<name>[^"]+)" \}\n(?P<code>.*?)```', re.DOTALL)

# Loaded beside the recipe (`-p`), not into it: counts the calls that ran into the client's timeout and
# the `slow` faults the sandbox drew, and prints both at the end of the run. It changes nothing.
OBSERVER = """
import json
import threading

import pytest

timeouts, slow_faults, lock = [], [], threading.Lock()


@pytest.fixture(autouse=True)
def _count_timeouts(monkeypatch):
    from airflow_provider_patsnap.exceptions import PatsnapTransientError
    from airflow_provider_patsnap.hooks._transport import Transport

    send = Transport.send

    def send_counting_timeouts(self, *args, **kwargs):
        try:
            return send(self, *args, **kwargs)
        except PatsnapTransientError as error:
            if "no complete answer within timeout" in str(error):
                with lock:
                    timeouts.append(str(error))
            raise

    monkeypatch.setattr(Transport, "send", send_counting_timeouts)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    yield
    sandbox = item.funcargs.get("patsnap_sandbox")
    if sandbox is not None:
        slow_faults.append(sandbox.stats()["faults"].get("slow", 0))


def pytest_terminal_summary(terminalreporter):
    seen = {"timeouts": len(timeouts), "slow_faults": sum(slow_faults)}
    terminalreporter.write_line("recipe-observer: " + json.dumps(seen))
"""


def recipe_files() -> dict[str, str]:
    text = (REPO_ROOT / "docs" / "sandbox.md").read_text(encoding="utf-8")
    return {match["name"]: match["code"] for match in TITLED_BLOCK.finditer(text)}


def test_the_plugin_recipe_runs_as_written(tmp_path: Path) -> None:
    files = recipe_files()
    assert set(files) >= {"conftest.py", "test_awards.py"}
    project = tmp_path / "user_project"
    project.mkdir()
    for name in ("conftest.py", "test_awards.py"):
        (project / name).write_text(files[name], encoding="utf-8")
    observer = tmp_path / "observer"
    observer.mkdir()
    (observer / "recipe_observer.py").write_text(OBSERVER, encoding="utf-8")
    home = tmp_path / "airflow-home"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW_CONN_", "PYTEST_", "AIRFLOW__"))
    }
    env.update(airflow_env(home))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(observer), env.get("PYTHONPATH")]))
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "recipe_observer",
            str(project),
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    assert "1 passed" in output
    # The plugin's sandbox stalls a `slow` fault well within the plugin's connection timeout: the
    # recipe drew one and no call waited for the client to give up.
    [seen] = re.findall(r"^recipe-observer: (\{.*\})$", output, re.MULTILINE)
    assert json.loads(seen)["timeouts"] == 0, output[-4000:]
    assert json.loads(seen)["slow_faults"] >= 1, output[-4000:]  # counted once answered
