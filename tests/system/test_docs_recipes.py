"""The pytest recipe in docs/sandbox.md runs as written, in an empty project, with the shipped plugin."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from scripts.airflow_env import airflow_env
from tests.helpers import REPO_ROOT

TITLED_BLOCK = re.compile(r'``` \{ \.python title="(?P<name>[^"]+)" \}\n(?P<code>.*?)```', re.DOTALL)


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
    home = tmp_path / "airflow-home"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW_CONN_", "PYTEST_", "AIRFLOW__"))
    }
    env.update(airflow_env(home))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(project)],
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
