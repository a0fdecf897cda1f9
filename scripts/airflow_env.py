"""The one place that says how this repository runs Airflow: tests, `make` targets, the demo, benchmarks.

Every caller picks its own ``AIRFLOW_HOME`` (a temp dir, ``.airflow-home/<line>``, ...); everything else
follows from it. Stdlib only: the test conftest imports this before anything imports Airflow.

    from scripts.airflow_env import airflow_env        # Python: a dict to merge into an environment
    python scripts/airflow_env.py HOME --shell          # `export K=V` lines for a shell to eval
    python scripts/airflow_env.py HOME -- CMD ARGS...   # run CMD with the environment (the Makefile)
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DAGS = REPO_ROOT / "example_dags"


def airflow_env(
    home: str | os.PathLike[str],
    *,
    dags_folder: str | os.PathLike[str] = EXAMPLE_DAGS,
    metadata_db: str | None = None,
    load_examples: bool = False,
) -> dict[str, str]:
    """Airflow settings for ``home`` (made absolute; the directory is not created). The metadata DB is
    a SQLite file in ``home`` unless ``metadata_db`` (a SQLAlchemy URL) names another one.
    ``load_examples`` turns on Airflow's example DAGs (and, from 3.3, every provider's)."""
    home_path = Path(home).resolve()
    return {
        "AIRFLOW_HOME": str(home_path),
        # Airflow's own example DAGs would be parsed into every run; the default is True.
        "AIRFLOW__CORE__LOAD_EXAMPLES": str(load_examples),
        "AIRFLOW__CORE__DAGS_FOLDER": str(Path(dags_folder).resolve()),
        # A file, not in-memory SQLite: `airflow dags test` and dag.test() break on `sqlite://`.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_db or f"sqlite:///{home_path / 'airflow.db'}",
        # Airflow 2.11 warns on every start unless timer metrics use the Airflow 3 unit; harmless on 3.x.
        "AIRFLOW__METRICS__TIMER_UNIT_CONSISTENCY": "True",
        # Unit-test mode changes config defaults and DB handling; we test what users run.
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    }


def main(argv: list[str]) -> int:
    own, command = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("home", help="AIRFLOW_HOME")
    parser.add_argument("--dags-folder", default=str(EXAMPLE_DAGS))
    parser.add_argument("--shell", action="store_true", help="print `export` lines for eval")
    args = parser.parse_args(own)
    if args.shell == bool(command):
        parser.error("give either --shell or -- COMMAND...")
    env = airflow_env(args.home, dags_folder=args.dags_folder)
    if args.shell:
        print("\n".join(f"export {name}={shlex.quote(value)}" for name, value in env.items()))
        return 0
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    os.execvpe(command[0], command, {**os.environ, **env})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
