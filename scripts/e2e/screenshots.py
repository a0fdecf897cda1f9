"""The screenshots ``make e2e`` leaves for reviewers, named once for browser.py (which takes them, in the
selenium venv) and main.py (which checks they are there, in the Airflow venv): standard library only."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

AFTER_LOGIN = "1-after-login"
STANDARD_FIELDS = "2-add-connection-standard-fields"
EXTRA_FIELDS = "3-add-connection-extra-fields"
EXTRA_JSON = "4-add-connection-extra-json"
CONNECTION_LIST = "5-connection-list"
TEST_BUTTON = "6-list-row-test-button"
# Taken by an observation, not a check: when that step fails, the observation named here says
# "not observed: ..." and there is no screenshot to expect.
TEST_BUTTON_WITH_PORT = "7-list-row-test-button-with-port"
TEST_BUTTON_WITH_PORT_OBSERVATION = "list-row Test button, connection with a stored port"
FAILURE = "failure"  # only when a browser step failed

REQUIRED = (AFTER_LOGIN, STANDARD_FIELDS, EXTRA_FIELDS, EXTRA_JSON, CONNECTION_LIST, TEST_BUTTON)


def missing_or_empty(directory: Path, names: Iterable[str]) -> list[str]:
    """The ``<name>.png`` files of ``names`` that are absent from ``directory`` or hold no bytes."""
    missing = []
    for name in names:
        path = directory / f"{name}.png"
        if not path.is_file() or path.stat().st_size == 0:
            missing.append(path.name)
    return missing
