"""Airflow 2.11's connection pages through Flask's test client: run by test_fab_connection_form.py.

Runs in its own process (``python -m tests.system.fab_connection_view``) against the migrated metadata DB
of the AIRFLOW_HOME it is given, logs in as a user it creates, and prints one JSON object with what it
saw: the Add page, the connection Save stored, the same after an unchanged Edit, what the hook's own test
says of it, and what the Test button's endpoint answers. The client secret comes from
``FORM_CONN_SECRET`` and is never printed.
"""

from __future__ import annotations

import ast
import html
import json
import os
import re
import sys
from typing import Any

from werkzeug.datastructures import MultiDict

from tests.fab_form import BrowserForm, body_of_test_button, submitted

CONN_ID = "patsnap_fab"


def stored(conn_id: str) -> dict[str, Any]:
    from airflow.models import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        conn = session.query(Connection).filter_by(conn_id=conn_id).one()
        return {
            "id": conn.id,
            "host": conn.host,
            "login": conn.login,
            "password_kept": conn.password == os.environ["FORM_CONN_SECRET"],
            "port": conn.port,
            "extra": conn.extra,
        }


def main(base_url: str) -> dict[str, Any]:
    from airflow.www.app import create_app

    app = create_app(config={"WTF_CSRF_ENABLED": False}, testing=True)
    security = app.appbuilder.sm
    security.add_user(
        "tester", "Form", "Tester", "tester@example.com", security.find_role("Admin"), "tester-pw"
    )
    client = app.test_client()
    login = client.post("/login/", data={"username": "tester", "password": "tester-pw"})
    seen: dict[str, Any] = {"login": login.status_code}

    page = client.get("/connection/add")
    add_form = BrowserForm(page.get_data(as_text=True))
    testable = re.search(r'id="testable_connection_types"[^>]*>(.*?)<', page.get_data(as_text=True), re.S)
    seen["add_page"] = {
        "status": page.status_code,
        "config_test_connection": add_form.meta.get("config_test_connection"),
        "test_url": add_form.meta.get("test_url"),
        # A Python list rendered into the page (HTML-escaped), which connection_form.js decodes.
        "patsnap_testable": bool(testable)
        and "patsnap" in ast.literal_eval(html.unescape(testable.group(1))),
    }
    typed = {
        "conn_id": CONN_ID,
        "host": base_url,
        "login": os.environ["FORM_CONN_LOGIN"],
        "password": os.environ["FORM_CONN_SECRET"],
    }
    posted = submitted(add_form.fields, "patsnap", typed)
    seen["defaults_posted"] = {name: value for name, value in posted if name.startswith("extra__patsnap__")}
    saved = client.post("/connection/add", data=MultiDict(posted), follow_redirects=True)
    seen["saved"] = {"status": saved.status_code, "added": "Added Row" in saved.get_data(as_text=True)}
    seen["stored_after_add"] = stored(CONN_ID)

    # Edit, change nothing, Save: the page shows no password, and Airflow must keep the stored one.
    edit_url = f"/connection/edit/{seen['stored_after_add']['id']}"
    edit_form = BrowserForm(client.get(edit_url).get_data(as_text=True))
    edited = client.post(edit_url, data=MultiDict(edit_form.fields), follow_redirects=True)
    seen["edited_status"] = edited.status_code
    seen["stored_after_edit"] = stored(CONN_ID)

    from airflow_provider_patsnap.hooks.patsnap import PatsnapHook

    seen["hook_test"] = list(PatsnapHook(patsnap_conn_id=CONN_ID).test_connection())

    # The form's Test button, pressed on the Add page as filled in above (nothing saved is used).
    answer = client.post(seen["add_page"]["test_url"], json=body_of_test_button(posted))
    seen["test_button"] = {"status": answer.status_code, "body": answer.get_json(silent=True)}
    return seen


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
