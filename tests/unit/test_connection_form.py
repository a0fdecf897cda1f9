"""The connection form: Airflow 3.2+ reads get_provider_info(), 2.11-3.1 call the hook's methods."""

from __future__ import annotations

import importlib.util

import pytest

from airflow_provider_patsnap import get_provider_info
from airflow_provider_patsnap.connection import CONN_FIELDS
from airflow_provider_patsnap.hooks.patsnap import PatsnapHook


def test_both_form_descriptions_agree() -> None:
    [connection_type] = get_provider_info()["connection-types"]
    behaviour = PatsnapHook.get_ui_field_behaviour()
    assert connection_type["connection-type"] == PatsnapHook.conn_type == "patsnap"
    assert connection_type["ui-field-behaviour"] == {
        "hidden-fields": behaviour["hidden_fields"],
        "relabeling": behaviour["relabeling"],
        "placeholders": behaviour["placeholders"],
    }
    assert (
        set(connection_type["conn-fields"])
        == set(CONN_FIELDS)
        == {
            "qps",
            "timeout",
            "max_retries",
            "verify",
            "proxies",
        }
    )


@pytest.mark.skipif(
    importlib.util.find_spec("flask_appbuilder") is None,
    reason="the Flask connection form is only used (and installed) on Airflow 2.11-3.1",
)
def test_flask_form_widgets_cover_every_extra() -> None:
    widgets = PatsnapHook.get_connection_form_widgets()
    assert set(widgets) == set(CONN_FIELDS)
    assert widgets["verify"].field_class.__name__ == "BooleanField"
    assert widgets["max_retries"].field_class.__name__ == "IntegerField"
    # Airflow 2.11 accepts only Integer/Password/String/Boolean fields: a fractional qps is a string.
    assert widgets["qps"].field_class.__name__ == "StringField"
    assert widgets["qps"].kwargs["default"] == 5
