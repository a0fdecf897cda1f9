"""Packaging checks: provider metadata, entry point, typed marker, wheel contents, Airflow CLI."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.resources
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import airflow_provider_patsnap
from airflow_provider_patsnap import get_provider_info

DIST_NAME = "airflow-provider-patsnap"
PACKAGE = "airflow_provider_patsnap"
ENTRY_POINT_GROUP = "apache_airflow_provider"
REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def _airflow_package_dirs() -> list[Path]:
    spec = importlib.util.find_spec("airflow")  # does not import airflow
    assert spec is not None, "apache-airflow is not installed in this interpreter"
    locations = list(spec.submodule_search_locations or [])
    if not locations and spec.origin:
        locations = [str(Path(spec.origin).parent)]
    return [Path(p) for p in locations]


def _find_provider_info_schema() -> Path:
    """Airflow ships provider_info.schema.json inside its package (``airflow/`` in 2.11 and 3.3,
    the latter from the apache-airflow-core distribution); look in the known place first, then glob."""
    dirs = _airflow_package_dirs()
    for base in dirs:
        candidate = base / "provider_info.schema.json"
        if candidate.is_file():
            return candidate
    for base in dirs:
        found = sorted(base.rglob("provider_info.schema.json"))
        if found:
            return found[0]
    pytest.fail(f"provider_info.schema.json not found under the installed airflow package ({dirs})")


@pytest.fixture(scope="module")
def provider_info() -> dict[str, Any]:
    return get_provider_info()


@pytest.fixture(scope="module")
def distribution() -> importlib.metadata.Distribution:
    try:
        return importlib.metadata.distribution(DIST_NAME)
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(f"{DIST_NAME} is not installed: run `make venv` (pip install -e '.[dev]')")


# --------------------------------------------------------------------------- provider info


def test_provider_info_validates_against_airflow_schema(provider_info: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema_path = _find_provider_info_schema()
    schema = json.loads(schema_path.read_text())
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    errors = sorted(validator_cls(schema).iter_errors(provider_info), key=lambda e: list(e.path))
    assert not errors, f"get_provider_info() does not match {schema_path}:\n" + "\n".join(
        f"  {'/'.join(map(str, e.path)) or '<root>'}: {e.message}" for e in errors
    )


def test_provider_info_is_json_serialisable_and_names_the_distribution(
    provider_info: dict[str, Any], distribution: importlib.metadata.Distribution
) -> None:
    assert json.loads(json.dumps(provider_info)) == provider_info
    assert provider_info["package-name"] == DIST_NAME
    assert distribution.version in provider_info.get("versions", [distribution.version])


def test_modules_named_in_provider_info_exist(provider_info: dict[str, Any]) -> None:
    missing = []
    for section in ("hooks", "operators", "sensors", "triggers", "transfers", "bundles", "notifications"):
        for entry in provider_info.get(section, []):
            for module in entry.get("python-modules", []) or [entry.get("python-module")]:
                if module and importlib.util.find_spec(module) is None:
                    missing.append(f"{section}: {module}")
    assert not missing, "get_provider_info() names modules that do not exist: " + ", ".join(missing)


def test_classes_named_in_provider_info_import(provider_info: dict[str, Any]) -> None:
    paths = [ct["hook-class-name"] for ct in provider_info.get("connection-types", [])]
    paths += list(provider_info.get("extra-links", []))
    paths += list(provider_info.get("notifications", []))
    problems = []
    for path in paths:
        if not isinstance(path, str):
            continue
        module_name, _, attr = path.rpartition(".")
        try:
            module = importlib.import_module(module_name)
            getattr(module, attr)
        except Exception as exc:  # report every broken path, not just the first
            problems.append(f"{path}: {type(exc).__name__}: {exc}")
    assert not problems, "get_provider_info() names classes that do not import:\n  " + "\n  ".join(problems)


# --------------------------------------------------------------------------- installed distribution


def test_entry_point_resolves_to_get_provider_info(distribution: importlib.metadata.Distribution) -> None:
    eps = [ep for ep in distribution.entry_points if ep.group == ENTRY_POINT_GROUP]
    assert [ep.name for ep in eps] == ["provider_info"], eps
    assert eps[0].value == f"{PACKAGE}:get_provider_info"
    assert eps[0].load() is get_provider_info
    # Airflow finds providers through the global entry-point registry, not through the dist.
    registered = [
        ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.dist is not None
    ]
    assert any(ep.dist.name == DIST_NAME for ep in registered if ep.dist is not None)


def test_distribution_and_package_names_match(distribution: importlib.metadata.Distribution) -> None:
    # Airflow 3.3 derives the package name from the distribution name and logs an error otherwise.
    name = distribution.metadata["Name"]
    assert name == DIST_NAME
    assert re.sub(r"[-.]+", "_", name).lower() == PACKAGE
    assert airflow_provider_patsnap.__name__ == PACKAGE
    top_level = (distribution.read_text("top_level.txt") or "").split()
    if top_level:  # absent for some editable installs
        assert top_level == [PACKAGE], top_level


def test_distribution_metadata(distribution: importlib.metadata.Distribution) -> None:
    meta = distribution.metadata
    classifiers = meta.get_all("Classifier") or []
    assert "Framework :: Apache Airflow" in classifiers
    assert "Framework :: Apache Airflow :: Provider" in classifiers
    assert meta["Requires-Python"] == ">=3.11"
    runtime = [r for r in distribution.requires or [] if "extra ==" not in r]
    names = sorted(re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower() for r in runtime)
    # msgspec: installed by every supported Airflow already (3.x core and task SDK, 2.11 via Flask-Session)
    assert names == ["apache-airflow", "msgspec", "requests", "tenacity"], runtime


def test_py_typed_is_in_installed_package() -> None:
    marker = importlib.resources.files(PACKAGE).joinpath("py.typed")
    assert marker.is_file(), f"py.typed missing from the installed {PACKAGE}"


# --------------------------------------------------------------------------- Airflow CLI

_PROBLEM = re.compile(r"error|exception|traceback|cannot|failed|warning|mismatch", re.IGNORECASE)


def _airflow(*args: str) -> subprocess.CompletedProcess[str]:
    airflow_bin = VENV_BIN / "airflow"
    cmd = [str(airflow_bin), *args] if airflow_bin.exists() else [sys.executable, "-m", "airflow", *args]
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, stdin=subprocess.DEVNULL)


def _problem_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    lines = (proc.stdout + "\n" + proc.stderr).splitlines()
    return [ln for ln in lines if "patsnap" in ln.lower() and _PROBLEM.search(ln)]


@pytest.mark.timeout(240)
def test_airflow_providers_list_shows_provider_without_errors() -> None:
    proc = _airflow("providers", "list", "--output", "json")
    assert proc.returncode == 0, f"airflow providers list failed:\n{proc.stdout}\n{proc.stderr}"
    assert not _problem_lines(proc), "\n".join(_problem_lines(proc))
    # Airflow 3.0 and 3.1 print log lines (themselves starting with "[") to stdout before the JSON.
    json_lines = [line for line in proc.stdout.splitlines() if line.startswith("[{")]
    listed = json.loads(json_lines[-1]) if json_lines else []
    ours = [p for p in listed if p.get("package_name") == DIST_NAME]
    assert ours, f"{DIST_NAME} not in `airflow providers list`:\n{proc.stdout}\n{proc.stderr}"
    assert ours[0].get("version") == importlib.metadata.version(DIST_NAME)


@pytest.mark.timeout(240)
def test_airflow_registers_connection_type() -> None:
    proc = _airflow("providers", "hooks", "--output", "json")
    assert proc.returncode == 0, f"airflow providers hooks failed:\n{proc.stdout}\n{proc.stderr}"
    assert not _problem_lines(proc), "\n".join(_problem_lines(proc))
    info = get_provider_info()
    for conn_type in info.get("connection-types", []):
        assert f'"{conn_type["connection-type"]}"' in proc.stdout, (
            f"connection type {conn_type['connection-type']!r} not registered:\n{proc.stdout}\n{proc.stderr}"
        )


def test_airflow_registers_the_extra_link() -> None:
    """Airflow 2.11's webserver shows only registered link classes (3.x stores each link's URL)."""
    proc = _airflow("providers", "links", "--output", "json")
    assert proc.returncode == 0, f"airflow providers links failed:\n{proc.stdout}\n{proc.stderr}"
    assert "airflow_provider_patsnap.operators._batch.PatsnapColumnsLink" in proc.stdout, proc.stdout[-2000:]
