"""The vendor's vocabulary as the sandbox speaks it: paths, error codes and messages, job statuses, faults.

Kept apart from the client's own tables (``endpoints.py``, ``exceptions.py``, ``report.py``) on purpose:
the sandbox is written from the vendor's pages, not from the client, so a client that misreads the pages
fails against it. tests/unit/sandbox/test_contract.py checks that both still name the same paths, codes
and report job statuses.
"""

from __future__ import annotations

from airflow_provider_patsnap.sandbox.data import EndpointCode

FAULT_KINDS: tuple[str, ...] = ("qps", "busy", "service", "http500", "http502", "drop", "slow")
# Opt-in kinds (not in the default list): errors a client must NOT retry.
EXTRA_FAULT_KINDS: tuple[str, ...] = ("quota", "permission")
# Not drawn at random: Sandbox.lose_create_answers(n) arms it for the next n successful report creates.
LOST_CREATE_FAULT = "lost_create"
TOKEN_OUTAGE_FAULT = "token_outage"

TOKEN_PATH = "/oauth/token"
DATA_PATHS: dict[str, EndpointCode] = {
    "/high-value-data/seic-classification": "P022",
    "/advanced-patent-data/award-data": "P032",
    "/advanced-patent-data/customs-data": "P031",
    "/advanced-patent-data/legal-data": "P026",
}
REPORT_CREATE_PATH = "/patent-valuation-data/patent-report/task/create-no-logo"
REPORT_STATUS_PATH = "/patent-valuation-data/patent-report/job_id/status"
ROUTE_METHODS: dict[str, str] = {
    TOKEN_PATH: "POST",
    **dict.fromkeys(DATA_PATHS, "GET"),
    REPORT_CREATE_PATH: "POST",
    REPORT_STATUS_PATH: "GET",
}
# R002 ``job_status``, as the vendor's page documents it (the client's own copy: report.ReportStatus).
JOB_WAITING, JOB_EXPORTING, JOB_DONE, JOB_FAILED = 0, 1, 2, 3

ADMIN_PREFIX = "/_sandbox/"
MAX_BATCH = 100
JSON_CONTENT_TYPE = "application/json;charset=UTF-8"

ERROR_MESSAGES: dict[int, str] = {
    67200000: "API call exceeds the total limit set by the platform!",
    67200001: "API call exceeds the total limit set by the platform!",
    67200002: "The current call rate is too fast, exceeding the current configuration limit QPS!",
    67200003: "Access token expired or authentication error!",
    67200004: "The requested api does not have permission. Please contact our support personnel!",
    67200005: "Insufficient account balance/number of calls!",
    67200006: "The client has exceeded the activation validity period!",
    67200007: "The current call exceeds the configured usage limit of the day!",
    67200008: "Please check if the required apikey in the query parameter has been transmitted!",
    67200009: "The apikey does not match the passed bearerToken. Please check if a valid token is being used!",
    67200012: "The request is illegal!",
    67200100: "The current server status is busy, request response timeout!",
    67200101: "The API requested currently does not exist. Please check the request path!",
    68300004: "Invalid parameter!",
    68300005: "Search api failure!",
    68300006: "Analytic basic access error!",
    68300007: "Bad request!",
    68300008: "Service error, please try again later!",
    68300010: "The file does not comply with upload specifications!",
}
TOKEN_CREDENTIALS_MESSAGE = (
    "The key and secret parameters for applying for the token are incorrect or the client has been disabled!"
)

# The vendor does not say which HTTP status accompanies an error envelope: this is our assumption
# (switched off by error_http_status=False, where every envelope comes with HTTP 200).
HTTP_STATUS_FOR_CODE: dict[int, int] = {
    67200000: 403,
    67200001: 403,
    67200005: 403,
    67200006: 403,
    67200007: 403,
    67200002: 429,
    67200003: 401,
    67200008: 401,
    67200009: 401,
    67200004: 403,
    67200012: 405,
    67200100: 503,
    67200101: 404,
    68300004: 400,
    68300007: 400,
    68300010: 400,
    68300005: 500,
    68300006: 500,
    68300008: 500,
}
FAULT_ERROR_CODES: dict[str, int] = {
    "qps": 67200002,
    "busy": 67200100,
    "service": 68300008,
    "quota": 67200007,
    "permission": 67200004,
}
