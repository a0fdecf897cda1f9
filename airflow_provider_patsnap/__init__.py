"""Apache Airflow provider for the PatSnap Open API.

This module is imported on every DAG parse: it must not import Airflow or requests.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

CONNECTION_TYPE = "patsnap"
HOOK_CLASS = "airflow_provider_patsnap.hooks.patsnap.PatsnapHook"

# Shared by get_provider_info() (read by Airflow 3.2+) and the hook's form methods (Airflow 2.11-3.1).
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden_fields": ["schema", "port"],
    "relabeling": {
        "host": "Base URL",
        "login": "Client ID",
        "password": "Client secret or API key (sk-...)",
    },
    "placeholders": {
        "host": "https://connect.patsnap.com",
        "login": "client id (leave empty when using an sk- API key)",
        "password": "client secret, or an sk- API key",
    },
}

# name -> (label, description, JSON-schema type, default)
CONN_FIELDS: dict[str, tuple[str, str, str, Any]] = {
    "qps": ("Requests per second", "Client-side rate limit; ask PatSnap for your quota.", "number", 5),
    "timeout": ("Read timeout (s)", "Seconds to wait for one response.", "number", 30),
    "max_retries": ("Max retries", "Retries of a transient failure per call.", "integer", 5),
    "verify": ("Verify TLS", "Keep on unless you know why.", "boolean", True),
    "proxies": ("Proxies (JSON)", 'For example {"https": "http://proxy:3128"}.', "string", ""),
}


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
        "connection-types": [
            {
                "hook-class-name": HOOK_CLASS,
                "hook-name": "PatSnap",
                "connection-type": CONNECTION_TYPE,
                "ui-field-behaviour": {
                    key.replace("_", "-"): value for key, value in UI_FIELD_BEHAVIOUR.items()
                },
                "conn-fields": {
                    name: {
                        "label": label,
                        "description": description,
                        "schema": {"type": [json_type, "null"], "default": default},
                    }
                    for name, (label, description, json_type, default) in CONN_FIELDS.items()
                },
            }
        ],
        "extra-links": ["airflow_provider_patsnap.operators.report.PatsnapReportJobLink"],
    }
