"""The Airflow 3 UI's Add Connection form for PatSnap, driven in headless Chromium by selenium.

Runs in the tools venv (selenium only; no Airflow). Reads its inputs from E2E_* environment variables
(set by main.py), saves screenshots under $E2E_ARTIFACTS/screenshots and the page sources under
$E2E_ARTIFACTS/ui, and writes its checks as JSON to $E2E_RESULT.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import screenshots
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1100",
)
MASK = "***"
WAIT_SECONDS = 30


class FormCheck:
    def __init__(self, driver: WebDriver, artifacts: Path) -> None:
        self.driver = driver
        self.screenshot_dir = artifacts / "screenshots"
        self.pages = artifacts / "ui"
        self.screenshot_dir.mkdir(parents=True, exist_ok=True)
        self.pages.mkdir(parents=True, exist_ok=True)
        self.checks: list[dict[str, Any]] = []
        self.observations: list[dict[str, str]] = []

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append({"name": name, "ok": ok, "detail": detail})
        print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)

    def capture(self, name: str) -> str:
        """Save a screenshot and the page source; return the source."""
        self.driver.save_screenshot(str(self.screenshot_dir / f"{name}.png"))
        source = self.driver.page_source
        (self.pages / f"{name}.html").write_text(source, encoding="utf-8")
        return source

    def until(self, what: str, condition: Callable[[WebDriver], Any]) -> Any:
        return WebDriverWait(self.driver, WAIT_SECONDS, poll_frequency=0.25).until(condition, what)

    def button(self, text: str, scope: WebElement | None = None) -> WebElement:
        root = scope or self.driver
        return self.until(
            f"a button {text!r}",
            lambda _: next((b for b in root.find_elements(By.TAG_NAME, "button") if b.text == text), None),
        )

    # ------------------------------------------------------------------------------------- steps

    def log_in(self, base_url: str, user: str, password: str) -> None:
        self.driver.get(f"{base_url}/auth/login")
        self.until("the login form", lambda d: d.find_element(By.NAME, "username")).send_keys(user)
        self.driver.find_element(By.NAME, "password").send_keys(password)
        self.driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        self.until("the login to finish", lambda d: "/auth/login" not in d.current_url)

    def open_add_form(self, base_url: str, conn_id: str) -> WebElement:
        self.driver.get(f"{base_url}/connections")
        self.button("Add Connection").click()
        dialog = self.until(
            "the Add Connection dialog", lambda d: d.find_element(By.CSS_SELECTOR, "[role=dialog]")
        )
        dialog.find_element(By.NAME, "connection_id").send_keys(conn_id)
        conn_type = dialog.find_element(
            By.XPATH, ".//label[starts-with(normalize-space(.), 'Connection Type')]/following::input[1]"
        )
        conn_type.send_keys("PatSnap")
        time.sleep(0.5)  # the select filters its options as you type; Enter picks the first match
        conn_type.send_keys(Keys.ENTER)
        self.until("the PatSnap fields", lambda _: dialog.find_elements(By.NAME, "host"))
        return dialog

    def open_section(self, dialog: WebElement, title: str, field_name: str) -> None:
        """Open one accordion section of the form (opening one closes the others)."""
        field = dialog.find_element(By.NAME, field_name) if field_name else None
        if field is None or not field.is_displayed():
            self.button(title, dialog).click()
        if field is not None:
            self.until(f"the {title} section", lambda _: field.is_displayed())
        time.sleep(0.5)  # let the section's opening animation end before a screenshot

    def check_form(self, dialog: WebElement, expected: dict[str, dict[str, Any]]) -> None:
        self.open_section(dialog, "Standard Fields", "host")
        labels = {
            name: self._label_of(dialog, name) for name in ("host", "login", "password", "port", "schema")
        }
        self.check(
            "relabelled standard fields",
            labels["host"] == "Base URL"
            and labels["login"] == "Client ID"
            and (labels["password"] or "").startswith("Client secret or API key")
            and labels["port"] is None
            and labels["schema"] is None,
            f"labels {labels} (port and schema hidden)",
        )
        sources = [self.capture(screenshots.STANDARD_FIELDS)]
        self.open_section(dialog, "Extra Fields", "element_qps")
        wrong = {}
        for name, spec in expected.items():
            element = dialog.find_element(By.NAME, f"element_{name}")
            label = self._label_of(dialog, f"element_{name}")
            is_switch = element.get_attribute("type") == "checkbox"
            shown = element.is_selected() if is_switch else element.get_attribute("value")
            default = spec["default"]
            wanted = bool(default) if is_switch else ("" if default is None else str(default))
            if label != spec["label"] or shown != wanted:
                wrong[name] = {"label": label, "shown": shown, "expected": [spec["label"], wanted]}
        self.check(
            "extra fields with their defaults",
            not wrong,
            f"{len(expected)} fields {sorted(expected)}; mismatches {wrong}",
        )
        sources.append(self.capture(screenshots.EXTRA_FIELDS))
        self.open_section(dialog, "Extra Fields JSON", "")
        sources.append(self.capture(screenshots.EXTRA_JSON))
        masked = [
            element.get_attribute("name") or element.tag_name
            for element in dialog.find_elements(By.CSS_SELECTOR, "input, textarea")
            if MASK in (element.get_attribute("value") or "")
        ]
        in_source = [index for index, source in enumerate(sources) if MASK in source]
        self.check(
            "no *** in the form",
            not in_source and not masked,
            f"'***' in {len(in_source)} of {len(sources)} page sources; fields holding it: {masked}",
        )

    def save(self, dialog: WebElement, host: str, login: str, secret: str, conn_id: str) -> None:
        self.open_section(dialog, "Standard Fields", "host")
        dialog.find_element(By.NAME, "host").send_keys(host)
        dialog.find_element(By.NAME, "login").send_keys(login)
        # The form's source is not saved after this point: it would hold the secret we typed.
        dialog.find_element(By.NAME, "password").send_keys(secret)
        self.button("Save", dialog).click()
        self.until("the dialog to close", lambda d: not d.find_elements(By.CSS_SELECTOR, "[role=dialog]"))
        row = self.until(
            "the saved connection in the list",
            lambda d: next(
                (r for r in d.find_elements(By.CSS_SELECTOR, "tbody tr") if conn_id in r.text), None
            ),
        )
        self.capture(screenshots.CONNECTION_LIST)
        self.check("saved from the UI", row is not None, f"row {row.text.splitlines()[:1]!r} in the list")
        self.observe_test_button(row, "list-row Test button", screenshots.TEST_BUTTON)

    def observe_row_with_port(self, base_url: str, conn_id: str) -> None:
        """The list-row Test button of a connection whose port is stored (made through the REST API)."""
        name = screenshots.TEST_BUTTON_WITH_PORT_OBSERVATION
        try:
            self.driver.get(f"{base_url}/connections")  # a fresh page: no toast of the first click left
            row = self.until(
                f"the row of {conn_id}",
                lambda d: next(
                    (r for r in d.find_elements(By.CSS_SELECTOR, "tbody tr") if conn_id in r.text), None
                ),
            )
            self.observe_test_button(row, name, screenshots.TEST_BUTTON_WITH_PORT)
        except WebDriverException as error:  # an observation, not a check: note what happened instead
            self.observations.append(
                {"name": name, "shown": f"not observed: {type(error).__name__}: {error.msg}"}
            )

    def observe_test_button(self, row: WebElement, name: str, screenshot: str) -> None:
        """Click the row's Test button and note what the UI says (recorded for the docs, not asserted)."""
        row.find_element(By.CSS_SELECTOR, "button[aria-label='Test Connection']").click()
        toast = self.until(
            "the Test button's answer",
            lambda d: next(
                (
                    t
                    for t in d.find_elements(By.CSS_SELECTOR, "[data-part=root]")
                    if t.text.startswith("Test Conn")
                ),
                None,
            ),
        )
        self.observations.append({"name": name, "shown": toast.text.replace("\n", " / ")})
        self.capture(screenshot)

    def _label_of(self, dialog: WebElement, field_name: str) -> str | None:
        """The text of the form label of the field named ``field_name`` (None when there is no such field)."""
        fields = dialog.find_elements(By.NAME, field_name)
        if not fields:
            return None
        # The field's group holds its label: a label's "for" does not always match the input's id.
        labels = fields[0].find_elements(
            By.XPATH,
            "./ancestor::*[@data-scope='field' and @data-part='root'][1]"
            "//label[@data-scope='field' and @data-part='label']",
        )
        return labels[0].get_attribute("textContent").strip() if labels else None


def chromium(profile: str) -> WebDriver:
    options = webdriver.ChromeOptions()
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    service = Service(shutil.which("chromedriver") or "/usr/bin/chromedriver")
    return webdriver.Chrome(service=service, options=options)


def main() -> int:
    env = os.environ
    artifacts = Path(env["E2E_ARTIFACTS"])
    expected = json.loads(env["E2E_EXPECTED_FIELDS"])
    profile = tempfile.mkdtemp(prefix="e2e-chromium-")
    driver = chromium(profile)
    form = FormCheck(driver, artifacts)
    code = 0
    try:
        form.log_in(env["E2E_BASE_URL"], env["E2E_USER"], env["E2E_PASSWORD"])
        form.capture(screenshots.AFTER_LOGIN)
        dialog = form.open_add_form(env["E2E_BASE_URL"], env["E2E_CONN_ID"])
        form.check_form(dialog, expected)
        form.save(
            dialog, env["E2E_CONN_HOST"], env["E2E_CONN_LOGIN"], env["E2E_CONN_SECRET"], env["E2E_CONN_ID"]
        )
        form.observe_row_with_port(env["E2E_BASE_URL"], env["E2E_PORT_CONN_ID"])
    except WebDriverException as error:
        form.check("browser steps", False, f"{type(error).__name__}: {error.msg}")
        try:
            driver.save_screenshot(str(form.screenshot_dir / f"{screenshots.FAILURE}.png"))
        except WebDriverException:
            pass
        code = 1
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    Path(env["E2E_RESULT"]).write_text(
        json.dumps({"checks": form.checks, "observations": form.observations}, indent=2), encoding="utf-8"
    )
    return code


if __name__ == "__main__":
    sys.exit(main())
