"""The release as a user gets it: `python -m build` on a clean copy of the project, the contents of the
sdist and the wheel, and the wheel installed with plain pip into a fresh venv (no uv, not editable),
where `airflow providers list` shows it and the sandbox runs from the installed package.

The fresh venv gets the Airflow version this suite runs on, pinned by the matching constraints file, so
`make test` proves the wheel on Airflow 3.3.2 and `make test AIRFLOW=2` on 2.11.2.
"""

from __future__ import annotations

import email.parser
import json
import re
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.version import Version

from airflow_provider_patsnap import __version__
from scripts.airflow_env import airflow_env
from tests.helpers import REPO_ROOT
from tests.release import AIRFLOW_VERSION, Artifacts, FreshVenv, readme_install_block, run

PACKAGE = "airflow_provider_patsnap"
DIST_NAME = "airflow-provider-patsnap"
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
# Made by the build in the copied tree, not project files.
SDIST_BUILD_OUTPUT = re.compile(rf"^(PKG-INFO|setup\.cfg|{PACKAGE}\.egg-info/.*)$")

# Building and a plain-pip install of Airflow take minutes on a busy runner; the first test pays for both
# (the fixtures live in tests/system/conftest.py, built once per session: the literal README test uses
# the same venv).
pytestmark = pytest.mark.timeout(1800)


def _run(
    cmd: list[str | Path], timeout: float, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return run(cmd, timeout, env, cwd)


# --------------------------------------------------------------------------- artifact contents


def test_sdist_holds_every_project_file_and_nothing_else(artifacts: Artifacts) -> None:
    with tarfile.open(artifacts.sdist) as sdist:
        prefix = f"{PACKAGE}-{__version__}/"
        members = [m.name for m in sdist.getmembers() if m.isfile()]
    assert all(name.startswith(prefix) for name in members), members[:5]
    held = {name.removeprefix(prefix) for name in members}
    held = {name for name in held if not SDIST_BUILD_OUTPUT.match(name)}
    assert sorted(artifacts.project_files - held) == [], "project files missing from the sdist"
    assert sorted(held - artifacts.project_files) == [], "files in the sdist that are not project files"
    assert {"tests/conftest.py", "LICENSE", "NOTICE", "CHANGELOG.md"} <= held


def test_wheel_holds_the_package_license_and_notice(artifacts: Artifacts) -> None:
    with zipfile.ZipFile(artifacts.wheel) as wheel:
        names = set(wheel.namelist())
        dist_info = f"{PACKAGE}-{__version__}.dist-info"
        licenses = {name: wheel.read(f"{dist_info}/licenses/{name}") for name in ("LICENSE", "NOTICE")}
        entry_points = wheel.read(f"{dist_info}/entry_points.txt").decode()
    assert {name.split("/", 1)[0] for name in names} == {PACKAGE, dist_info}
    package_files = {name for name in artifacts.project_files if name.startswith(f"{PACKAGE}/")}
    assert sorted(package_files - names) == [], "package files missing from the wheel"
    assert f"{PACKAGE}/py.typed" in names
    # The example DAGs ship as the package's example_dags folder (Airflow 3.3's load_examples bundle),
    # built from the repository's top-level example_dags/.
    examples = {f"{PACKAGE}/example_dags/{path.name}" for path in (REPO_ROOT / "example_dags").glob("*.py")}
    assert examples and examples <= names, sorted(examples - names)
    assert f"{PACKAGE}/example_dags/data/patents.csv" in names
    for name, content in licenses.items():
        assert content == (REPO_ROOT / name).read_bytes(), (
            f"{name} in the wheel differs from the repository's"
        )
    assert b"Apache License" in licenses["LICENSE"] and b"END OF TERMS AND CONDITIONS" in licenses["LICENSE"]
    assert f"provider_info = {PACKAGE}:get_provider_info" in entry_points


def test_wheel_metadata_describes_the_release(artifacts: Artifacts) -> None:
    with zipfile.ZipFile(artifacts.wheel) as wheel:
        raw = wheel.read(f"{PACKAGE}-{__version__}.dist-info/METADATA").decode()
    meta = email.parser.Parser().parsestr(raw)
    assert meta["Name"] == DIST_NAME
    assert meta["Version"] == __version__
    assert meta["License-Expression"] == "Apache-2.0"
    assert sorted(meta.get_all("License-File") or []) == ["LICENSE", "NOTICE"]
    assert meta["Description-Content-Type"] == "text/markdown"
    assert meta.get_payload().strip() == README.strip()
    urls = dict(entry.split(", ", 1) for entry in meta.get_all("Project-URL") or [])
    assert set(urls) == {"Documentation", "Source", "Changelog", "Issues"}
    classifiers = meta.get_all("Classifier") or []
    assert {"Framework :: Apache Airflow", "Framework :: Apache Airflow :: Provider"} <= set(classifiers)
    pythons = {
        c.rsplit(" :: ", 1)[1]
        for c in classifiers
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    }
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert running in pythons, f"tests run on Python {running}, which the classifiers do not list"
    assert pythons == {"3.11"}, f"classifiers list {sorted(pythons)}; CI tests Python 3.11 only (.ci/run)"


# --------------------------------------------------------------------------- the installed wheel


def test_wheel_is_a_plain_install_outside_the_checkout(fresh_venv: FreshVenv) -> None:
    probe = (
        "import importlib.metadata as m, airflow_provider_patsnap as p; "
        "d = m.distribution('airflow-provider-patsnap'); "
        "print(p.__file__); print(d.version); print(d.read_text('direct_url.json') or '{}')"
    )
    out = _run([fresh_venv.python, "-c", probe], timeout=60, env=fresh_venv.env, cwd=fresh_venv.workdir)
    module_file, version, direct_url = out.stdout.splitlines()
    assert Path(module_file).is_relative_to(fresh_venv.python.parent.parent), module_file
    assert version == __version__
    assert not json.loads(direct_url).get("dir_info", {}).get("editable", False)


def test_airflow_providers_list_in_the_fresh_venv_shows_the_provider(fresh_venv: FreshVenv) -> None:
    airflow = fresh_venv.python.parent / "airflow"
    out = _run(
        [airflow, "providers", "list", "--output", "json"],
        timeout=300,
        env=fresh_venv.env,
        cwd=fresh_venv.workdir,
    )
    listed = json.loads(out.stdout[out.stdout.find("[") :])
    ours = [provider for provider in listed if provider.get("package_name") == DIST_NAME]
    assert [provider.get("version") for provider in ours] == [__version__], out.stdout + out.stderr


@pytest.fixture
def installed_sandbox(fresh_venv: FreshVenv) -> Iterator[str]:
    """The sandbox started from the fresh venv's copy of the package; yields its base URL."""
    proc = subprocess.Popen(
        [
            fresh_venv.python,
            "-u",
            "-m",
            f"{PACKAGE}.sandbox",
            "--port",
            "0",
            "--client-id",
            "fresh-client",
            "--client-secret",
            "fresh-secret",
        ],
        env=fresh_venv.env,
        cwd=fresh_venv.workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first_line = proc.stdout.readline()  # the sandbox's first line says where it listens
        found = re.search(r"listening on (http://\S+)", first_line)
        assert found, (
            f"the installed sandbox did not start: {first_line}{proc.stdout.read() if proc.poll() is not None else ''}"
        )
        yield found.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_airflow_connections_test_passes_against_the_installed_sandbox(
    fresh_venv: FreshVenv, installed_sandbox: str
) -> None:
    conn = {
        "conn_type": "patsnap",
        "host": installed_sandbox,
        "login": "fresh-client",
        "password": "fresh-secret",
    }
    env = {
        **fresh_venv.env,
        "AIRFLOW_CONN_PATSNAP_DEFAULT": json.dumps(conn),
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",  # the CLI refuses to test connections otherwise
    }
    airflow = fresh_venv.python.parent / "airflow"
    out = _run(
        [airflow, "connections", "test", "patsnap_default"], timeout=300, env=env, cwd=fresh_venv.workdir
    )
    assert "Connection success!" in out.stdout, out.stdout + out.stderr


# What Airflow 3.3's dag-processor does with [core] load_examples on (its default): the installed
# provider's example_dags folder is a bundle of its own, each file parsed by a BundleDagBag and serialized
# (airflow/dag_processing/processor.py). An audit hook records, from frames of the example files, every
# network connect and every file opened outside the package other than Python modules.
PARSE_THE_SHIPPED_EXAMPLES = """
import json, os, sys
from pathlib import Path

import structlog
from airflow.dag_processing.bundles.manager import DagBundlesManager
from airflow.dag_processing.dagbag import BundleDagBag
from airflow.dag_processing.processor import _serialize_dags

manager = DagBundlesManager()
bundle = manager.get_bundle("airflow-provider-patsnap-example-dags")
bundle.initialize()
root = str(Path(bundle.path).resolve())
seen = {"calls": [], "files": []}

def from_an_example():
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.startswith(root):
            return True
        frame = frame.f_back
    return False

def audit(event, args):
    if event == "socket.connect" and from_an_example():
        seen["calls"].append(repr(args[1]))
    elif event == "open" and isinstance(args[0], (str, bytes, os.PathLike)) and from_an_example():
        path = os.path.realpath(os.fsdecode(args[0]))
        if not path.startswith(root) and not path.endswith((".py", ".pyc", ".so")):
            seen["files"].append(path)

sys.addaudithook(audit)
dags, errors = {}, {}
for name in sorted(os.listdir(root)):
    if name.endswith(".py"):
        path = os.path.join(root, name)
        bag = BundleDagBag(dag_folder=path, bundle_path=bundle.path, bundle_name=bundle.name, load_op_links=False)
        errors.update(bag.import_errors)
        errors.update(_serialize_dags(bag, structlog.get_logger())[1])
        dags.update({dag_id: name for dag_id in bag.dag_ids})
names = sorted(b.name for b in manager.get_all_dag_bundles())
print("BUNDLE " + json.dumps({"bundles": names, "path": root, "dags": dags, "errors": errors, **seen}))
"""


@pytest.mark.skipif(
    Version(AIRFLOW_VERSION) < Version("3.3"), reason="Airflow loads a provider's example_dags from 3.3"
)
def test_airflow_loads_the_wheels_examples_with_no_connection_no_call_and_no_outside_file(
    fresh_venv: FreshVenv, tmp_path: Path
) -> None:
    """A deployment that installs the wheel lists its example DAGs (load_examples is on by default) and has
    none of their connections: each file must parse there without one, call nothing and read nothing
    outside the package."""
    env = {
        name: value
        for name, value in fresh_venv.env.items()
        if not name.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_", "PATSNAP_"))
    }
    env.update(airflow_env(tmp_path / "home", dags_folder=tmp_path / "dags", load_examples=True))
    (tmp_path / "dags").mkdir()
    airflow = fresh_venv.python.parent / "airflow"
    _run([airflow, "db", "migrate"], timeout=300, env=env, cwd=fresh_venv.workdir)

    probe = _run(
        [fresh_venv.python, "-c", PARSE_THE_SHIPPED_EXAMPLES], timeout=300, env=env, cwd=fresh_venv.workdir
    )

    [line] = [line for line in probe.stdout.splitlines() if line.startswith("BUNDLE ")]
    found = json.loads(line.removeprefix("BUNDLE "))
    assert "airflow-provider-patsnap-example-dags" in found["bundles"]
    assert Path(found["path"]).is_relative_to(fresh_venv.python.parent.parent), found["path"]  # the wheel's
    shipped = {path.name for path in (REPO_ROOT / "example_dags").glob("*.py")}
    assert set(found["dags"].values()) | set(found["errors"]) == shipped, found  # every file is parsed
    assert found["calls"] == [] and found["files"] == [], found
    assert found["errors"] == {}, found["errors"]
    assert set(found["dags"].values()) == shipped  # every file defines DAGs


# --------------------------------------------------------------------------- what the README and pyproject promise


def test_readme_install_section_shows_the_commands_these_tests_run() -> None:
    """The fresh venv above is made by running this block (tests/release.py); here, what it says."""
    commands = [line.split("#", 1)[0].strip() for line in readme_install_block().body.splitlines()]
    assert [c for c in commands if c] == [
        "python -m pip install build",
        "python -m build",
        f"python -m pip install dist/{PACKAGE}-*.whl",
        "python -m pip install apache-airflow-providers-sqlite",
        "airflow providers list",
    ]
    # Not on an index yet: naming the index install as a command to run would show one that fails.
    assert not any("pip install airflow-provider-patsnap" in c for c in commands)


def test_readme_links_are_absolute_and_point_at_files_that_exist() -> None:
    source = PYPROJECT["project"]["urls"]["Source"].rstrip("/")
    in_repo = f"{source}/blob/main/"
    targets = re.findall(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)", re.sub(r"```.*?```", "", README, flags=re.S))
    assert targets
    relative = [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t) and not t.startswith("#")]
    assert relative == [], "relative links break on a package index"
    missing = [
        t
        for t in targets
        if t.startswith(in_repo) and not (REPO_ROOT / t.removeprefix(in_repo).split("#")[0]).exists()
    ]
    assert missing == []
    for label in ("Documentation", "Changelog"):
        url = PYPROJECT["project"]["urls"][label]
        assert url.startswith(in_repo) and (REPO_ROOT / url.removeprefix(in_repo)).is_file(), url


def test_version_is_written_once_and_the_changelog_has_its_section() -> None:
    """A release version has its changelog section; a development version (between releases) is newer
    than every released section, has no section of its own yet, and its changes are under Unreleased."""
    project = PYPROJECT["project"]
    assert "version" not in project and project["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": f"{PACKAGE}.__version__"}
    version = Version(__version__)
    assert str(version) == __version__, f"{__version__!r} is not in PEP 440's normal form ({version})"
    changelog = (REPO_ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    released = [Version(text) for text in re.findall(r"^## \[(\d[^\]]*)\]", changelog, re.M)]
    assert released, "CHANGELOG.md has no released section"
    if version.is_devrelease:
        assert re.search(r"^## \[Unreleased\]$", changelog, re.M), "CHANGELOG.md has no [Unreleased] section"
        assert version.base_version not in {str(v) for v in released}, (
            f"{version.base_version} is released: __version__ should be it, or the next .dev0"
        )
        assert version > max(released), f"{__version__} is not newer than the last release {max(released)}"
    else:
        assert version in released, f"CHANGELOG.md has no {__version__} section"


def test_release_workflow_checks_the_tag_builds_tests_and_publishes_with_trusted_publishing() -> None:
    workflow = yaml.safe_load(
        (REPO_ROOT / ".github" / "workflows" / "release.yml").read_text(encoding="utf-8")
    )
    assert workflow[True] == {"push": {"tags": ["v*"]}}  # YAML 1.1 reads the key `on` as True
    jobs = workflow["jobs"]
    build_script = "\n".join(step.get("run", "") for step in jobs["build"]["steps"])
    assert "python -m build" in build_script
    assert any(step.get("run") == "bash .ci/run" for step in jobs["test"]["steps"])
    check_the_test_job(jobs["test"])
    publish = jobs["publish"]
    assert set(publish["needs"]) == {"build", "test"}
    assert publish["permissions"] == {"id-token": "write"}
    assert any(step.get("uses", "").startswith("pypa/gh-action-pypi-publish@") for step in publish["steps"])
    assert not any("password" in step.get("with", {}) for step in publish["steps"]), (
        "trusted publishing: no token"
    )
    # The tag check reads the version the way the workflow does; run that code here.
    version_code = re.search(r"version=\$\(python -c '(.+?)'\)", build_script)
    assert version_code, build_script
    read = _run([sys.executable, "-c", version_code.group(1)], timeout=60, cwd=REPO_ROOT)
    assert read.stdout.strip() == __version__


def check_the_test_job(job: dict[str, Any]) -> None:
    """The release's test job can finish .ci/run: within its stated budget, with apt run as root, and
    keeping the e2e runs' screenshots and logs whether they pass or not."""
    budget = re.search(r"Budget: (\d+) minutes", (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8"))
    assert budget, ".ci/run no longer states its budget"
    assert job["timeout-minutes"] >= int(budget[1]), f"timeout-minutes below .ci/run's {budget[1]} minutes"
    script = "\n".join(step.get("run", "") for step in job["steps"])
    # The runner user is not root: an apt-get without sudo fails, and so would .ci/run's own.
    unprivileged = [
        line.strip()
        for line in script.splitlines()
        if "apt-get " in line and not re.search(r"\bsudo\b[^|;&]*apt-get ", line)
    ]
    assert unprivileged == [], f"apt-get without sudo in the test job: {unprivileged}"
    uploads = [step for step in job["steps"] if step.get("uses", "").startswith("actions/upload-artifact@")]
    assert uploads, "the test job uploads no artifacts"
    for upload in uploads:
        assert upload.get("if") == "always()", "artifacts of a failed run are the ones needed most"
        assert upload["with"].get("include-hidden-files") is True, "upload-artifact skips dot-directories"
    paths = {
        line.strip() for upload in uploads for line in upload["with"]["path"].splitlines() if line.strip()
    }
    assert {".e2e-artifacts/", ".e2e-artifacts-celery/"} <= paths
