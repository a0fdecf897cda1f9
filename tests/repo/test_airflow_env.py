"""scripts/airflow_env.py is the one place the repository's Airflow settings are written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from scripts import airflow_env as airflow_env_module
from scripts.airflow_env import airflow_env, main
from tests.helpers import REPO_ROOT

# Where code that runs Airflow lives; virtual environments and local Airflow homes are not ours.
CODE_SUFFIXES = {".py", ".sh", ".cfg", ".toml", ".mk", ".yml", ".yaml"}
# Hidden folders (venvs, Airflow homes, e2e artifacts, caches) but .ci and .github; build output.
NOT_OURS = re.compile(r"(^|/)(\.(?!ci(/|$)|github(/|$))[^/]+|build|dist|site|[^/]+\.egg-info)(/|$)")


def _code_files() -> list[Path]:
    files = [REPO_ROOT / "Makefile", REPO_ROOT / ".ci" / "run"]
    for path in REPO_ROOT.rglob("*"):
        relative = path.relative_to(REPO_ROOT).as_posix()
        if path.suffix in CODE_SUFFIXES and path.is_file() and not NOT_OURS.search(relative):
            files.append(path)
    return [path for path in files if path.is_file()]


def test_settings_follow_from_the_home_and_are_absolute(tmp_path: Path) -> None:
    env = airflow_env(tmp_path / "home", dags_folder=tmp_path / "dags")
    assert env["AIRFLOW_HOME"] == str((tmp_path / "home").resolve())
    assert (
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        == f"sqlite:///{(tmp_path / 'home' / 'airflow.db').resolve()}"
    )
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str((tmp_path / "dags").resolve())
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__CORE__UNIT_TEST_MODE"] == "False"


def test_relative_home_becomes_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    env = airflow_env("relative-home")
    assert env["AIRFLOW_HOME"] == str(tmp_path.resolve() / "relative-home")
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(REPO_ROOT / "example_dags")


def test_shell_output_sets_the_same_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "a home with spaces"
    assert main([str(home), "--shell"]) == 0
    exported = {}
    for line in capsys.readouterr().out.splitlines():
        keyword, assignment = shlex.split(line)
        assert keyword == "export"
        name, _, value = assignment.partition("=")
        exported[name] = value
    assert exported == airflow_env(home)


def test_the_settings_are_written_nowhere_else() -> None:
    names = [name for name in airflow_env(REPO_ROOT) if name != "AIRFLOW_HOME"]
    allowed = {Path(airflow_env_module.__file__).resolve(), Path(__file__).resolve()}
    offenders = [
        f"{path.relative_to(REPO_ROOT)}: {name}"
        for path in _code_files()
        if path.resolve() not in allowed
        for name in names
        if name in path.read_text(encoding="utf-8", errors="replace")
    ]
    assert offenders == [], "set these through scripts/airflow_env.py instead"
