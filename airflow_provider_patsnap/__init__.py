"""Apache Airflow provider for the PatSnap Open API.

This module is imported on every DAG parse: it must not import Airflow or requests (only the
stdlib-only :mod:`connection` module, for the connection form).
"""

from __future__ import annotations

from typing import Any

from airflow_provider_patsnap.connection import (
    CONNECTION_TYPE,
    UI_FIELD_BEHAVIOUR,
    provider_connection_fields,
)

__version__ = "0.2.0.dev0"

HOOK_CLASS = "airflow_provider_patsnap.hooks.patsnap.PatsnapHook"


def get_provider_info() -> dict[str, Any]:
    """Describe the provider to Airflow's ProvidersManager (entry point ``apache_airflow_provider``)."""
    return {
        "package-name": "airflow-provider-patsnap",
        "name": "PatSnap",
        "description": "Enrich patent lists with the PatSnap Open API and land the rows in your warehouse.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "PatSnap",
                "external-doc-url": "https://open.patsnap.com/",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {"integration-name": "PatSnap", "python-modules": ["airflow_provider_patsnap.hooks.patsnap"]}
        ],
        "operators": [
            {
                "integration-name": "PatSnap",
                "python-modules": [
                    "airflow_provider_patsnap.operators.patsnap",
                    "airflow_provider_patsnap.operators.report",
                ],
            }
        ],
        "sensors": [
            {"integration-name": "PatSnap", "python-modules": ["airflow_provider_patsnap.sensors.patsnap"]}
        ],
        "triggers": [
            {"integration-name": "PatSnap", "python-modules": ["airflow_provider_patsnap.triggers.patsnap"]}
        ],
        "extra-links": ["airflow_provider_patsnap.operators._batch.PatsnapColumnsLink"],
        "connection-types": [
            {
                "hook-class-name": HOOK_CLASS,
                "hook-name": "PatSnap",
                "connection-type": CONNECTION_TYPE,
                "ui-field-behaviour": {
                    key.replace("_", "-"): value for key, value in UI_FIELD_BEHAVIOUR.items()
                },
                "conn-fields": provider_connection_fields(),
            }
        ],
    }
