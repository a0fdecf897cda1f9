"""The connection form's extra fields as Flask AppBuilder widgets (the UI of Airflow 2.11-3.1).

Airflow 3.2+ reads the same fields from ``get_provider_info()``; both come from
:data:`~airflow_provider_patsnap.connection.CONN_FIELDS`. Flask and WTForms are imported here only, when
the UI asks for the form.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_patsnap.connection import CONN_FIELDS


def flask_form_widgets() -> dict[str, Any]:
    from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms import BooleanField, IntegerField, StringField
    from wtforms.validators import NumberRange, Optional

    fields: dict[str, Any] = {}
    for name, spec in CONN_FIELDS.items():
        label, description, default = lazy_gettext(spec.label), spec.description, spec.default
        if spec.json_type == "boolean":
            fields[name] = BooleanField(label, default=default, description=description)
        elif spec.json_type == "integer":
            fields[name] = IntegerField(
                label,
                widget=BS3TextFieldWidget(),
                validators=[Optional(), NumberRange(min=0)],
                default=default,
                description=description,
            )
        else:  # Airflow 2.11 drops a hook whose form has a FloatField: numbers are text fields
            fields[name] = StringField(
                label, widget=BS3TextFieldWidget(), default=default, description=description
            )
    return fields
