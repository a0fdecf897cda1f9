"""The connection form: Airflow 3.2+ reads get_provider_info(), 2.11-3.1 call the hook's methods."""

from __future__ import annotations

import importlib
import importlib.util
import json
import warnings
from collections.abc import Callable, Mapping

import pytest

from airflow_provider_patsnap import get_provider_info
from airflow_provider_patsnap.connection import CONN_FIELDS, ConnectionField, parse_connection
from airflow_provider_patsnap.hooks.patsnap import PatsnapHook
from tests.fab_form import BrowserForm, body_of_test_button, submitted


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
            "rate_limit_redis_conn_id",
        }
    )


# Where each Airflow line keeps the secrets masker's key test, newest first: 3.3's core and task SDK,
# 3.0-3.2's task SDK, 2.11.
SECRETS_MASKER_MODULES = (
    "airflow._shared.secrets_masker",
    "airflow.sdk._shared.secrets_masker",
    "airflow.sdk.execution_time.secrets_masker",
    "airflow.utils.log.secrets_masker",
)


def airflow_should_hide_value_for_key() -> Callable[[str], bool]:
    """Airflow's own test of whether a connection extra's name is sensitive (its value masked as ***)."""
    for name in SECRETS_MASKER_MODULES:
        try:
            with warnings.catch_warnings():
                # An older path that this Airflow still serves with a deprecation: Airflow's move, not ours.
                warnings.simplefilter("ignore", DeprecationWarning)
                module = importlib.import_module(name)
        except ImportError:
            continue
        function = getattr(module, "should_hide_value_for_key", None)
        if callable(function):
            return function
    raise AssertionError(f"no should_hide_value_for_key in any of {SECRETS_MASKER_MODULES}")


def sensitive_fields_with_a_default(fields: Mapping[str, ConnectionField]) -> list[str]:
    """The extras Airflow would show, and the Airflow 3 UI save, as *** because their default is not None."""
    should_hide = airflow_should_hide_value_for_key()
    return sorted(name for name, spec in fields.items() if should_hide(name) and spec.default is not None)


def test_no_sensitive_extra_has_a_default_the_ui_would_save_as_masked() -> None:
    # Airflow 2.11 and 3.1+ mask 'proxies', 3.0 does not: its default is None whichever line runs it.
    assert CONN_FIELDS["proxies"].default is None
    assert sensitive_fields_with_a_default(CONN_FIELDS) == []
    # What Airflow 3.2+ reads from the provider info: the same None, not a value the UI would mask.
    should_hide = airflow_should_hide_value_for_key()
    sensitive = sorted(name for name in CONN_FIELDS if should_hide(name))
    conn_fields = get_provider_info()["connection-types"][0]["conn-fields"]
    assert {name: conn_fields[name]["schema"]["default"] for name in sensitive} == dict.fromkeys(sensitive)


def test_a_sensitive_extra_with_an_empty_default_is_caught() -> None:
    """An empty string is not None: Airflow masks it, the form shows ***, and the UI saves ***."""
    # 'api_key' is masked by every Airflow line we support; 'proxies' is not masked by 3.0.
    empty_api_key = ConnectionField("API key", "", "string", "")
    assert sensitive_fields_with_a_default({**CONN_FIELDS, "api_key": empty_api_key}) == ["api_key"]


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
    assert widgets["proxies"].kwargs["default"] is None
    should_hide = airflow_should_hide_value_for_key()
    hidden = [name for name in widgets if should_hide(name)]
    assert {name: widgets[name].kwargs["default"] for name in hidden} == dict.fromkeys(hidden)


@pytest.mark.skipif(
    importlib.util.find_spec("airflow.www") is None,
    reason="Airflow's Flask AppBuilder connection form is Airflow 2.11's (3.x has none)",
)
# Airflow 2.11's own form builds its type list from tuples, which its newer wtforms deprecates.
@pytest.mark.filterwarnings("ignore:Passing SelectField choices as tuples:DeprecationWarning")
def test_airflow_2_form_with_its_defaults_saves_and_tests_working_settings() -> None:
    """Airflow 2.11's own connection form class, filled in as the browser does with our widgets' defaults:
    what its view would save, and what its Test button sends, both parse into working settings."""
    from airflow.models import Connection
    from airflow.www.forms import create_connection_form_class
    from airflow.www.views import ConnectionModelView
    from flask import Flask
    from flask_babel import Babel
    from werkzeug.datastructures import MultiDict

    app = Flask(__name__)
    app.config.update(WTF_CSRF_ENABLED=False, SECRET_KEY="form-test")
    Babel(app)
    with app.test_request_context("/connection/add", method="POST"):
        form_class = create_connection_form_class()
        # The add page: every control rendered as the view renders it (ours with their defaults).
        html = '<form id="model_form">' + "".join(str(field) for field in form_class()) + "</form>"
        typed = {
            "conn_id": "patsnap_fab",
            "host": "https://connect.patsnap.com",
            "login": "form-client",
            "password": "form-secret",
        }
        posted = submitted(BrowserForm(html).fields, "patsnap", typed)
        assert {name: value for name, value in posted if name.startswith("extra__patsnap__")} == {
            "extra__patsnap__qps": "5",
            "extra__patsnap__timeout": "30",
            "extra__patsnap__max_retries": "5",
            "extra__patsnap__verify": "y",  # ticked by default
            "extra__patsnap__proxies": "",  # no default: nothing to mask
            "extra__patsnap__rate_limit_redis_conn_id": "",  # opt-in: empty, so not saved
        }

        form = form_class(formdata=MultiDict(posted))
        assert form.validate(), form.errors
        view = ConnectionModelView.__new__(ConnectionModelView)  # process_form needs no app state
        view.process_form(form, True)
        saved_extra = form.extra.data
    assert "***" not in saved_extra
    assert json.loads(saved_extra) == {"qps": "5", "timeout": "30", "max_retries": 5, "verify": True}

    standard = {name: typed[name] for name in ("host", "login", "password")}
    saved = Connection(conn_id="patsnap_fab", conn_type="patsnap", extra=saved_extra, **standard)
    # The test endpoint builds a Connection from the body and hands it to the hook as a URI (env var).
    body = body_of_test_button(posted)
    assert json.loads(body["extra"])["verify"] == "y"
    sent = Connection(conn_id="transient", **{k: v for k, v in body.items() if k != "connection_id"})
    tested = Connection(conn_id="transient", uri=sent.get_uri())
    for connection in (saved, tested):
        settings = parse_connection(connection)
        assert (settings.base_url, settings.client_id, settings.client_secret) == (
            "https://connect.patsnap.com",
            "form-client",
            "form-secret",
        )
        assert (settings.qps, settings.timeout, settings.max_retries, settings.verify, settings.proxies) == (
            5.0,
            30.0,
            5,
            True,
            None,
        )
        assert settings.rate_limit_redis_conn_id is None


def test_the_shared_rate_limit_extra_is_not_taken_for_a_secret() -> None:
    """A masked value reads as "not set": were Airflow to mask this name, a connection saved through its
    UI would quietly fall back to a limit per process. The name says what it holds, and no line masks it."""
    assert airflow_should_hide_value_for_key()("rate_limit_redis_conn_id") is False
    assert CONN_FIELDS["rate_limit_redis_conn_id"].default is None  # opt-in
