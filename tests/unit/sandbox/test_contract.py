"""The sandbox's vendor vocabulary and the client's are written separately on purpose; they must agree.

If the client learns a new path, error code or job status (or the sandbox does), this fails until the other side
is taught it too, so the sandbox never silently stops exercising part of the client.
"""

from __future__ import annotations

from airflow_provider_patsnap import exceptions, report
from airflow_provider_patsnap.endpoints import ENDPOINTS
from airflow_provider_patsnap.sandbox import contract

CLIENT_CODE_SETS = (
    exceptions.TRANSIENT_CODES,
    exceptions.RATE_LIMIT_CODES,
    exceptions.TOKEN_CODES,
    exceptions.QUOTA_CODES,
    exceptions.PERMISSION_CODES,
    exceptions.INVALID_INPUT_CODES,
    exceptions.INVALID_REQUEST_CODES,
)


def test_data_paths_and_codes_match_the_client_endpoint_table() -> None:
    client = {endpoint.path: code for code, endpoint in ENDPOINTS.items()}
    assert client == contract.DATA_PATHS


def test_data_methods_match_the_client_endpoint_table() -> None:
    assert {path: contract.ROUTE_METHODS[path] for path in contract.DATA_PATHS} == {
        endpoint.path: endpoint.method for endpoint in ENDPOINTS.values()
    }


def test_report_and_token_paths_match_the_client() -> None:
    assert (
        report.CREATE_PATH,
        report.STATUS_PATH,
    ) == (contract.REPORT_CREATE_PATH, contract.REPORT_STATUS_PATH)
    assert contract.TOKEN_PATH == "/oauth/token"
    # The sandbox serves exactly these routes: nothing the client calls is missing, nothing extra.
    client_paths = {
        "/oauth/token",
        report.CREATE_PATH,
        report.STATUS_PATH,
        *(endpoint.path for endpoint in ENDPOINTS.values()),
    }
    assert set(contract.ROUTE_METHODS) == client_paths


def test_vendor_error_codes_match_the_client_code_sets() -> None:
    client_codes = frozenset().union(*CLIENT_CODE_SETS)
    assert set(contract.ERROR_MESSAGES) == client_codes
    assert set(contract.HTTP_STATUS_FOR_CODE) == client_codes
    assert set(contract.FAULT_ERROR_CODES.values()) <= client_codes


def test_report_job_statuses_match_the_client() -> None:
    sandbox_statuses = {
        "WAITING": contract.JOB_WAITING,
        "EXPORTING": contract.JOB_EXPORTING,
        "DONE": contract.JOB_DONE,
        "FAILED": contract.JOB_FAILED,
    }
    assert sandbox_statuses == {status.name: status.value for status in report.ReportStatus}
    assert {contract.JOB_WAITING, contract.JOB_EXPORTING} == set(report.ACTIVE_STATUSES)
    assert {contract.JOB_DONE, contract.JOB_FAILED} == set(report.TERMINAL_STATUSES)
