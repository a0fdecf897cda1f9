"""The connection checks of ``make e2e``: the UI's Add Connection form in headless Chromium (browser.py),
the saved connection under ``airflow connections test``, the REST test call, the list-row Test button, and
the screenshots those steps leave.

A mixin of main.py's EndToEnd: it uses the deployment, the sandbox and the record of the run from there.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from rest import AirflowApi
from screenshots import REQUIRED as REQUIRED_SCREENSHOTS
from screenshots import TEST_BUTTON_WITH_PORT, TEST_BUTTON_WITH_PORT_OBSERVATION, missing_or_empty
from stack import ADMIN_PASSWORD, ADMIN_USER, AirflowSettings, VendorSandbox, expected_extra_fields

UI_CONN_ID = "patsnap_ui"
PORT_CONN_ID = "patsnap_with_port"  # stores the sandbox's port in the port field (the UI's form hides it)


class ConnectionChecks:
    artifacts: Path
    screenshots: Path
    browser_python: str | None
    logs: Path
    env: dict[str, str]
    settings: AirflowSettings
    sandbox: VendorSandbox
    api: AirflowApi
    rest_extra: dict[str, Any]
    observations: dict[str, str]

    def step(self, text: str) -> None:
        raise NotImplementedError

    def record(self, name: str, ok: bool, detail: str, **data: Any) -> None:
        raise NotImplementedError

    def airflow(self, *args: str, timeout: float = 180, **env: str) -> subprocess.CompletedProcess[str]:
        raise NotImplementedError

    def check_ui(self) -> None:
        self.step("UI: Add Connection form in headless Chromium")
        if not self.browser_python:
            self.record("UI connection form", False, "no --browser-python (selenium venv) given")
            return
        result_file = self.artifacts / "ui-result.json"
        browser_env = {
            **self.env,
            "E2E_BASE_URL": self.settings.base_url,
            "E2E_USER": ADMIN_USER,
            "E2E_PASSWORD": ADMIN_PASSWORD,
            "E2E_CONN_ID": UI_CONN_ID,
            "E2E_PORT_CONN_ID": PORT_CONN_ID,
            "E2E_CONN_HOST": self.sandbox.base_url,
            "E2E_CONN_LOGIN": self.sandbox.client_id,
            "E2E_CONN_SECRET": self.sandbox.client_secret,
            "E2E_ARTIFACTS": str(self.artifacts),
            "E2E_RESULT": str(result_file),
            "E2E_EXPECTED_FIELDS": json.dumps(expected_extra_fields()),
        }
        browser_env.pop("PYTHONPATH", None)
        with (self.logs / "browser.log").open("w", encoding="utf-8") as log:
            code = subprocess.call(
                [self.browser_python, str(Path(__file__).with_name("browser.py"))],
                env=browser_env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=300,
            )
        result = json.loads(result_file.read_text()) if result_file.exists() else {"checks": []}
        for check in result["checks"]:
            self.record(f"UI: {check['name']}", check["ok"], check["detail"])
        for seen in result.get("observations", []):
            self.observations[f"UI: {seen['name']}"] = seen["shown"]
        if code != 0 or not result["checks"]:
            self.record("UI browser run", False, f"browser.py exit {code}; see logs/browser.log")
        saved = self.api.call("GET", f"/api/v2/connections/{UI_CONN_ID}")
        saved_extra = json.loads(saved.get("extra") or "{}")
        self.record(
            "UI saves the extra the REST set-up posted",
            saved_extra == self.rest_extra,
            f"UI: {saved_extra}; REST: {self.rest_extra} (as the API shows them)",
        )
        test = self.airflow("connections", "test", UI_CONN_ID)
        self.record(
            "UI-saved connection passes airflow connections test",
            test.returncode == 0 and "Connection success!" in test.stdout,
            f"exit {test.returncode}: {test.stdout.strip().splitlines()[-1:]} {test.stderr.strip()[-300:]}",
        )
        self.check_rest_test()

    def check_rest_test(self) -> None:
        """POST /api/v2/connections/test with the credentials in the body, as docs/connection.md says."""
        body = {
            "connection_id": UI_CONN_ID,
            "conn_type": "patsnap",
            "host": self.sandbox.base_url,
            "login": self.sandbox.client_id,
            "password": self.sandbox.client_secret,
            "extra": json.dumps(self.rest_extra),
        }
        right = self.api.call("POST", "/api/v2/connections/test", body)
        self.record("REST connection test", right["status"] is True, f"answer {right}")
        wrong_body = {**body, "connection_id": "patsnap_wrong_secret", "password": "not-the-secret"}
        wrong = self.api.call("POST", "/api/v2/connections/test", wrong_body)
        self.record(
            "REST connection test, wrong secret",
            wrong["status"] is False and "67200003" in wrong["message"],
            f"answer {wrong}",
        )
        self.api.create_connection(wrong_body)
        failed = self.airflow("connections", "test", "patsnap_wrong_secret")
        self.record(
            "CLI connection test, wrong secret",
            failed.returncode == 1 and "Connection failed!" in failed.stdout and "67200003" in failed.stdout,
            f"exit {failed.returncode}: {' '.join(failed.stdout.split())[-250:]}",
        )
        disabled = self.airflow("connections", "test", UI_CONN_ID, AIRFLOW__CORE__TEST_CONNECTION="Disabled")
        self.record(
            "CLI connection test needs [core] test_connection = Enabled",
            disabled.returncode == 1 and "Testing connections is disabled" in disabled.stdout,
            f"with Disabled: exit {disabled.returncode}: {' '.join(disabled.stdout.split())}",
        )

    def check_screenshots(self) -> None:
        """Every screenshot the UI steps take is there and holds an image: reviewers read the run by them."""
        port_note = self.observations.get(f"UI: {TEST_BUTTON_WITH_PORT_OBSERVATION}", "")
        expected = [*REQUIRED_SCREENSHOTS]
        if port_note and not port_note.startswith("not observed"):
            expected.append(TEST_BUTTON_WITH_PORT)
        missing = missing_or_empty(self.screenshots, expected)
        taken = sorted(path.name for path in self.screenshots.glob("*.png"))
        self.record(
            "screenshots saved",
            not missing,
            f"{len(expected) - len(missing)} of {len(expected)} expected in {self.screenshots}; "
            f"missing or empty: {missing}; all taken: {taken}",
        )
