"""Airflow 2.11's connection form (Flask AppBuilder) as a browser submits it, for the form tests.

Two things a browser does on that page, written down once: what it posts when you press Save (every
control of ``form#model_form``, after ``connection_form.js`` has taken out the other connection types'
``extra__<type>__*`` controls), and the JSON its Test button sends to ``/api/v1/connections/test``
(``getSerializedFormData`` in Airflow 2.11.2's ``www/static/js/connection_form.js``).
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any


class BrowserForm(HTMLParser):
    """The controls of ``form#model_form`` with the values a browser would submit, and the page's meta."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.fields: list[tuple[str, str]] = []
        self.meta: dict[str, str] = {}
        self._in_form = False
        self._select: dict[str, Any] | None = None
        self._textarea: list[str] | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {name: value or "" for name, value in attrs}
        present = {name for name, _ in attrs}
        if tag == "meta" and "name" in attr:
            self.meta[attr["name"]] = attr.get("content", "")
        if tag == "form" and attr.get("id") == "model_form":
            self._in_form = True
        if not self._in_form or tag not in ("input", "select", "option", "textarea"):
            return
        name = attr.get("name", "")
        if tag == "input" and name:
            kind = attr.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in present:  # an unticked box is not submitted at all
                    self.fields.append((name, attr.get("value") or "on"))
            elif kind not in ("submit", "button", "file", "image", "reset"):
                self.fields.append((name, attr.get("value", "")))
        elif tag == "select" and name:
            self._select = {"name": name, "selected": None, "first": None}
        elif tag == "option" and self._select is not None:
            if self._select["first"] is None:
                self._select["first"] = attr.get("value", "")
            if "selected" in present:
                self._select["selected"] = attr.get("value", "")
        elif tag == "textarea" and name:
            self._textarea = [name, ""]

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._textarea[1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        elif tag == "select" and self._select is not None:
            chosen = self._select["selected"]
            self.fields.append(
                (self._select["name"], chosen if chosen is not None else self._select["first"])
            )
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            name, text = self._textarea
            # HTML drops the one line break right after <textarea>; Airflow's template puts one there.
            self.fields.append((name, re.sub(r"^\r?\n", "", text)))
            self._textarea = None


def submitted(fields: list[tuple[str, str]], conn_type: str, typed: dict[str, str]) -> list[tuple[str, str]]:
    """What Save posts once ``conn_type`` is chosen and ``typed`` is typed in: the other types' extra
    controls are out of the form (connection_form.js removes them), every other control keeps its value."""
    own = f"extra__{conn_type}__"
    values = {**typed, "conn_type": conn_type}
    return [
        (name, values.get(name, value))
        for name, value in fields
        if not name.startswith("extra__") or name.startswith(own)
    ]


def body_of_test_button(fields: list[tuple[str, str]]) -> dict[str, Any]:
    """The body the form's Test button posts (getSerializedFormData): non-empty values only, ``port`` as a
    number, ``extra`` parsed, and each ``extra__<type>__<name>`` under both its full and its short name,
    all as the strings the browser holds (a ticked checkbox is its value, ``y``)."""
    body: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    for name, value in fields:
        if name == "conn_id":
            body["connection_id"] = value
        elif value != "" and name == "port":
            body["port"] = int(value)
        elif value != "" and name != "csrf_token":
            if name == "extra":
                extras.update(json.loads(value))
            elif name.startswith("extra__"):
                extras[name] = value
                extras[re.sub(r"^extra__.+?__", "", name)] = value
            else:
                body[name] = value
    body["extra"] = json.dumps(extras)
    return body
