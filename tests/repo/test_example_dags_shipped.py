"""The example DAGs live in example_dags/ at the repository's top and ship in the wheel as
airflow_provider_patsnap/example_dags (Airflow 3.3 loads that folder as a bundle with load_examples); the
provider never imports them."""

from __future__ import annotations

import importlib
import json
import os
import sys

from airflow_provider_patsnap import get_provider_info
from tests.helpers import EXAMPLE_DAGS, REPO_ROOT

PROVIDER_MODULES = (
    "airflow_provider_patsnap.hooks.patsnap",
    "airflow_provider_patsnap.operators.patsnap",
    "airflow_provider_patsnap.operators.report",
    "airflow_provider_patsnap.sensors.patsnap",
    "airflow_provider_patsnap.triggers.patsnap",
    "airflow_provider_patsnap.testing.pytest_plugin",
)


def test_example_dags_and_their_data_are_at_the_top_and_linked_into_the_package() -> None:
    assert EXAMPLE_DAGS == REPO_ROOT / "example_dags"
    assert {path.name for path in EXAMPLE_DAGS.glob("*.py")} >= {
        "patsnap_enrichment.py",
        "patsnap_sharded_enrichment.py",
        "patsnap_value_report.py",
    }
    assert (EXAMPLE_DAGS / "data" / "patents.csv").is_file()
    # The package's example_dags is a relative symlink to the top folder: the editable install (and the
    # wheel built through it) shows Airflow the same files, with nothing copied by hand.
    link = REPO_ROOT / "airflow_provider_patsnap" / "example_dags"
    assert link.is_symlink() and os.readlink(link) == "../example_dags"
    assert link.resolve() == EXAMPLE_DAGS.resolve()


def test_importing_the_provider_does_not_import_the_example_dags() -> None:
    for name in PROVIDER_MODULES:
        importlib.import_module(name)
    info = get_provider_info()

    loaded = [name for name in sys.modules if name.startswith("airflow_provider_patsnap.example_dags")]
    assert loaded == [], f"importing the provider loaded DAG files: {loaded}"
    assert "example_dags" not in json.dumps(info), "provider info must not point Airflow at the example DAGs"
