"""The release as a user gets it, built once per session for the system tests that need it.

:func:`build_artifacts`: ``python -m build`` on a clean copy of the project (what git tracks), the sdist
and the wheel. :func:`install_as_the_readme_says`: a fresh venv, outside the checkout, into which the
README's install block is run as written, in the copy, with the committed constraints appended to its
``pip install`` lines as the README says to for CI's versions. What runs there imports the wheel, never
the checkout. Also the Markdown reading of the literal README test (:func:`fenced_blocks`).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from scripts.airflow_env import airflow_env

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "airflow_provider_patsnap"
AIRFLOW_VERSION = importlib.metadata.version("apache-airflow")
CONSTRAINTS = REPO_ROOT / (
    "constraints.txt" if AIRFLOW_VERSION.startswith("3.") else "constraints-airflow2.txt"
)
# Local state of a checkout, used only when there is no git to ask (an unpacked sdist).
LOCAL_STATE = re.compile(r"(^|/)(__pycache__|\.[^/]+|build|dist|[^/]+\.egg-info)(/|$)|\.py[cod]$")
FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


class Artifacts(NamedTuple):
    sdist: Path
    wheel: Path
    project_files: frozenset[str]  # what the sdist must hold: the copied project minus dot-files, evidence/
    clone: Path  # the clean copy they were built from (a user's clone)


class FreshVenv(NamedTuple):
    python: Path
    env: dict[str, str]  # no PYTHONPATH, the venv's bin first on PATH, a private AIRFLOW_HOME
    workdir: Path  # outside the repository, so nothing imports the checkout by accident
    user_env: dict[str, str]  # a new user's shell: the venv's bin first, HOME empty, no AIRFLOW_* at all
    clone: Path  # where the README's commands run (its dist/ holds the wheel the venv installed)


class Block(NamedTuple):
    """A fenced code block of a Markdown page: its language, its ``title="..."`` (if any) and its text."""

    lang: str
    title: str
    body: str


def fenced_blocks(path: Path) -> list[Block]:
    """The fenced blocks of ``path``, in order; ``python title="x"`` and MkDocs' ``{ .python title="x" }``."""
    blocks = []
    for match in FENCE.finditer(path.read_text(encoding="utf-8")):
        info = match["info"].strip()
        lang = re.match(r"\{?\s*\.?([\w-]*)", info)
        title = re.search(r'title="([^"]+)"', info)
        blocks.append(Block(lang[1] if lang else "", title[1] if title else "", match["body"]))
    return blocks


def readme_install_block() -> Block:
    """The bash block of the README's Install section."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("## Install")
    section = readme[start : readme.index("\n## ", start + 1)]
    [block] = [match["body"] for match in FENCE.finditer(section) if match["info"].strip() == "bash"]
    return Block("bash", "", block)


def run(
    cmd: list[str | Path], timeout: float, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(part) for part in cmd],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, (
        f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    )
    return proc


def outside_checkout_env() -> dict[str, str]:
    """This process's environment without what points at the checkout: with PYTHONPATH, pip and Python
    see the repository's package (and any egg-info in it) instead of the wheel."""
    return {name: value for name, value in os.environ.items() if name not in ("PYTHONPATH", "VIRTUAL_ENV")}


def checkout_files() -> list[str]:
    """What a clean clone holds: git's tracked and new unignored files, with the working tree's content.
    A tracked symlink (airflow_provider_patsnap/example_dags -> ../example_dags) is listed as itself."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        listed = [p.relative_to(REPO_ROOT).as_posix() for p in REPO_ROOT.rglob("*") if p.is_file()]
        listed = [name for name in listed if not LOCAL_STATE.search(name)]
    return sorted(name for name in listed if (REPO_ROOT / name).is_file() or (REPO_ROOT / name).is_symlink())


def through_links(files: list[str]) -> list[str]:
    """``files`` as the sdist holds them: a symlinked folder becomes a copy of the files in its target."""
    found = []
    for name in files:
        path = REPO_ROOT / name
        if path.is_symlink() and path.is_dir():
            target = path.resolve().relative_to(REPO_ROOT.resolve()).as_posix()
            found += [
                f"{name}/{other[len(target) + 1 :]}" for other in files if other.startswith(f"{target}/")
            ]
        else:
            found.append(name)
    return found


def build_artifacts(root: Path) -> Artifacts:
    clone = root / "clone"
    files = checkout_files()
    for name in files:
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, clone / name, follow_symlinks=False)
    builder, env = root / "builder", outside_checkout_env()
    run([sys.executable, "-m", "venv", builder], timeout=120, env=env, cwd=root)
    run(
        [builder / "bin" / "python", "-m", "pip", "install", "--quiet", "build"],
        timeout=300,
        env=env,
        cwd=root,
    )
    # With no --sdist/--wheel, build makes the sdist and then the wheel from the unpacked sdist.
    run(
        [builder / "bin" / "python", "-m", "build", "--outdir", root / "dist", clone],
        timeout=600,
        env=env,
        cwd=root,
    )
    sdists = list((root / "dist").glob(f"{PACKAGE}-*.tar.gz"))
    wheels = list((root / "dist").glob(f"{PACKAGE}-*-py3-none-any.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, sorted((root / "dist").iterdir())
    # Dot-files (CI, editor, git settings) and evidence/ (screenshots for reviewers) are not source.
    source = frozenset(
        name
        for name in through_links(files)
        if not re.search(r"(^|/)\.", name) and not name.startswith("evidence/")
    )
    return Artifacts(sdists[0], wheels[0], source, clone)


def pinned(line: str) -> str:
    """A README install line with CI's pins, as the README says: ``-c <constraints> apache-airflow==<v>``
    added to each ``pip install`` of the wheel or a provider (not to the build tool's)."""
    command, hash_, comment = line.partition("  #")
    words = shlex.split(command)
    if words[:4] == ["python", "-m", "pip", "install"] and words[4:] != ["build"]:
        command = f"{command.rstrip()} -c {shlex.quote(str(CONSTRAINTS))} 'apache-airflow=={AIRFLOW_VERSION}'"
    return f"{command}{hash_}{comment}"


def install_as_the_readme_says(artifacts: Artifacts, root: Path, report: Callable[[str], None]) -> FreshVenv:
    venv, home = root / "venv", root / "home"
    home.mkdir()
    base = outside_checkout_env()
    path = f"{venv / 'bin'}{os.pathsep}{base.get('PATH', '')}"
    user_env = {k: v for k, v in base.items() if not k.startswith("AIRFLOW")}
    user_env.update(PATH=path, HOME=str(home), PIP_DISABLE_PIP_VERSION_CHECK="1")
    run([sys.executable, "-m", "venv", venv], timeout=120, env=base, cwd=root)
    script = "set -euo pipefail\n" + "\n".join(
        pinned(line) for line in readme_install_block().body.splitlines()
    )
    started = time.monotonic()
    installed = run(["bash", "-c", script], timeout=1500, env=user_env, cwd=artifacts.clone)
    assert "airflow-provider-patsnap" in installed.stdout, installed.stdout[
        -3000:
    ]  # `airflow providers list`
    report(
        f"release artifacts: the README's install block (pinned to apache-airflow=={AIRFLOW_VERSION}) into a "
        f"fresh venv in {time.monotonic() - started:.0f} s"
    )
    env = {**base, **airflow_env(root / "airflow-home", dags_folder=root / "dags"), "PATH": path}
    (root / "dags").mkdir()
    return FreshVenv(venv / "bin" / "python", env, root, user_env, artifacts.clone)
