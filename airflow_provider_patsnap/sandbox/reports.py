"""R002 patent value report jobs and their presigned download links (the files are in ``files.py``).

Nothing here speaks HTTP directly: :class:`ReportJobs` turns requests into plain results and
:meth:`ReportJobs.download` into an :class:`HttpReply`; ``app.py`` does the wiring. Invalid input is
raised as :class:`InvalidReportRequest`, which the app answers with 68300004. Job progress and link
expiry read the sandbox clock they are given, so ``Sandbox.advance()`` moves them on.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, unquote, urlsplit
from xml.sax.saxutils import escape as xml_escape

from airflow_provider_patsnap.sandbox.contract import JOB_DONE, JOB_EXPORTING, JOB_FAILED, JOB_WAITING
from airflow_provider_patsnap.sandbox.data import IdKind, resolve
from airflow_provider_patsnap.sandbox.files import REPORT_FORMATS
from airflow_provider_patsnap.sandbox.files import report_bytes as report_bytes  # public here too

ReportType = Literal["word", "pdf"]

# The vendor's example job id; ours count up from it, skipping the few that a double holds exactly.
JOB_ID_BASE = 1579434053399036000
FAILURE_CAUSE = "报告生成失败：专利数据不完整"
DESIGN_REJECTION = "unauthorized patents and design patents are not supported"
MAX_ID_LENGTH = 64

# Magic values (case-insensitive substrings of the requested patent value), see docs/sandbox.md.
FAIL_MARKER = "FAIL"
TRAVERSAL_MARKER = "TRAVERSAL"
DESIGN_MARKER = "DESIGN"

# The kind code is the letters (and digits) after the last digit of the number: "S" = design.
_KIND_CODE = re.compile(r"\d([A-Za-z]+\d*)$")
_DOWNLOAD_PATH = re.compile(r"/reports/([^/]+)/([^/]+)")
# For str patterns \s is exactly str.isspace(), one character at a time, without a Python loop.
_WHITESPACE = re.compile(r"\s")


class InvalidReportRequest(ValueError):
    """The request cannot be served; the message is the error_msg of a 68300004 envelope."""


@dataclass(frozen=True)
class HttpReply:
    """A complete HTTP response: the server sends it with an exact Content-Length."""

    status: int
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class IssuedLink:
    token: str
    file_name: str
    disposition: str
    expires: str
    amz_date: str
    issued: float  # on the sandbox clock
    url: str


@dataclass
class ReportJob:
    job_id: int
    kind: IdKind
    value: str
    pn: str
    report_type: ReportType
    created: float  # on the sandbox clock
    link: IssuedLink | None = None

    @property
    def fails(self) -> bool:
        return FAIL_MARKER in self.value.upper()

    @property
    def file_name(self) -> str:
        extension = REPORT_FORMATS[self.report_type].extension
        if TRAVERSAL_MARKER in self.value.upper():
            # Deliberately hostile, so clients prove they never use a server-given name as a path.
            return f"../../../etc/passwd_{self.pn}{extension}"
        return f"patent_value_report_{self.pn}{extension}"


# ----------------------------------------------------------------------------------------- validation


def validate_id(name: str, value: str) -> None:
    """The sandbox's id rule (shared with the data endpoints): non-blank, no whitespace, <= 64 chars."""
    if not value or len(value) > MAX_ID_LENGTH or _WHITESPACE.search(value):
        raise InvalidReportRequest(
            f"Invalid parameter! {name} values must be 1-{MAX_ID_LENGTH} characters without whitespace"
        )


def is_design_patent(kind: IdKind, value: str) -> bool:
    """Stand-in for the vendor's design-patent rule: kind code S... or any value containing DESIGN."""
    if DESIGN_MARKER in value.upper():
        return True
    match = _KIND_CODE.search(value) if kind == "patent_number" else None
    return bool(match and match.group(1).upper().startswith("S"))


def _requested_patent(body: Mapping[str, Any]) -> tuple[IdKind, str]:
    for kind in ("patent_id", "patent_number"):  # patent_id wins when both are given
        raw = body.get(kind)
        if raw is None or raw == "":
            continue
        if not isinstance(raw, str):
            raise InvalidReportRequest(f"Invalid parameter! {kind} must be a string")
        validate_id(kind, raw)
        return kind, raw  # type: ignore[return-value]
    raise InvalidReportRequest("Invalid parameter! one of patent_id or patent_number is required")


def _report_type(body: Mapping[str, Any]) -> ReportType:
    raw = body.get("report_type")
    if raw == "word" or raw == "pdf":
        return raw
    raise InvalidReportRequest(f"Invalid parameter! report_type must be 'word' or 'pdf', got {raw!r}")


def _parse_job_id(text: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise InvalidReportRequest(f"Invalid parameter! job_id must be an integer, got {text!r}")
    return int(text)


def _is_exact_in_float(number: int) -> bool:
    return int(float(number)) == number


# ----------------------------------------------------------------------------------------- jobs


class ReportJobs:
    """Thread-safe store of report jobs and the links issued for them."""

    def __init__(
        self,
        *,
        report_delay: float,
        link_ttl: float,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
    ) -> None:
        self._report_delay = report_delay
        self._link_ttl = link_ttl
        self._clock = clock
        self._wall_clock = wall_clock
        self._signing_key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._counter = 0
        self._jobs: dict[int, ReportJob] = {}
        self._links: dict[str, ReportJob] = {}

    def create(self, body: Any) -> ReportJob:
        """Validate an R002 create body (a parsed JSON value) and queue a job."""
        if not isinstance(body, Mapping):
            raise InvalidReportRequest("Invalid parameter! the body must be a JSON object")
        kind, value = _requested_patent(body)
        report_type = _report_type(body)
        if is_design_patent(kind, value):
            raise InvalidReportRequest(DESIGN_REJECTION)
        pn, _ = resolve(kind, value)
        with self._lock:
            job = ReportJob(self._next_job_id(), kind, value, pn, report_type, self._clock())
            self._jobs[job.job_id] = job
        return job

    def status(self, job_id_text: str, download_base_url: str) -> dict[str, Any]:
        """The ``data`` of an R002 status answer; issues the download link on the first 'done' poll."""
        job_id = _parse_job_id(job_id_text)
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise InvalidReportRequest(f"Invalid parameter! unknown job_id {job_id}")
            status, queue_num = self._progress(job)
            link = None
            if status == JOB_DONE:
                link = job.link = job.link or self._issue_link(job, download_base_url)
        return {
            "job_id": job.job_id,  # a bare JSON number, as the vendor sends it
            "queue_num": queue_num,
            "job_status": status,
            "download_url": link.url if link else None,
            "abnormal_cause": FAILURE_CAUSE if status == JOB_FAILED else None,
        }

    def download(self, method: str, target: str, headers: Mapping[str, str]) -> HttpReply:
        """Serve one request to the download host, S3-style."""
        split = urlsplit(target)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        if "authorization" in {name.lower() for name in headers} or "apikey" in query:
            # S3 refuses a presigned URL combined with other credentials; so do we, loudly.
            return _s3_error(400, "InvalidArgument", "Only one auth mechanism allowed")
        if method not in ("GET", "HEAD"):
            return _s3_error(
                405, "MethodNotAllowed", "The specified method is not allowed against this resource."
            )
        job = self._verified_job(split.path, query)
        if job is None or job.link is None:
            return _s3_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        if self._clock() - job.link.issued >= self._link_ttl:  # dead at issued + ttl, like a token
            return _s3_error(403, "AccessDenied", "Request has expired")
        body = report_bytes(str(job.job_id), job.pn, job.report_type)
        return HttpReply(
            200,
            body,
            REPORT_FORMATS[job.report_type].mime_type,
            (
                ("Content-Disposition", _header_safe(job.link.disposition)),
                ("ETag", f'"{hashlib.md5(body).hexdigest()}"'),
            ),
        )

    # ------------------------------------------------------------------------------------- internals

    def _next_job_id(self) -> int:
        while True:
            self._counter += 1
            candidate = JOB_ID_BASE + self._counter
            if not _is_exact_in_float(candidate):  # so a client that goes through float visibly breaks
                return candidate

    def _progress(self, job: ReportJob) -> tuple[int, int]:
        """(job_status, queue_num): waiting for the first third of report_delay, exporting after."""
        elapsed = self._clock() - job.created
        delay = self._report_delay
        if elapsed >= delay:
            return (JOB_FAILED if job.fails else JOB_DONE), 0
        waiting_for = delay / 3
        if elapsed < waiting_for:
            return JOB_WAITING, math.ceil(3 * (waiting_for - elapsed) / waiting_for)  # 3, 2, then 1
        return JOB_EXPORTING, 0

    def _issue_link(self, job: ReportJob, base_url: str) -> IssuedLink:
        token = secrets.token_urlsafe(18)
        name = job.file_name
        disposition = f'attachment; filename="{name}"'
        expires = _seconds_text(self._link_ttl)
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self._wall_clock()))
        signature = self._sign(token, name, expires, amz_date, disposition)
        url = (
            f"{base_url}/reports/{token}/{quote(name, safe='')}"
            f"?X-Amz-Expires={expires}&X-Amz-Date={amz_date}&X-Amz-Signature={signature}"
            f"&response-content-disposition={quote(disposition, safe='')}"
        )
        link = IssuedLink(token, name, disposition, expires, amz_date, self._clock(), url)
        self._links[token] = job
        return link

    def _sign(self, token: str, name: str, expires: str, amz_date: str, disposition: str) -> str:
        message = "\n".join((token, name, expires, amz_date, disposition)).encode("utf-8")
        return hmac.new(self._signing_key, message, hashlib.sha256).hexdigest()

    def _verified_job(self, path: str, query: Mapping[str, str]) -> ReportJob | None:
        match = _DOWNLOAD_PATH.fullmatch(path)
        if match is None:
            return None
        token, name = match.group(1), unquote(match.group(2))
        with self._lock:
            job = self._links.get(token)
        if job is None or job.link is None or name != job.link.file_name:
            return None
        expected = self._sign(
            token,
            name,
            query.get("X-Amz-Expires", ""),
            query.get("X-Amz-Date", ""),
            query.get("response-content-disposition", ""),
        )
        return job if hmac.compare_digest(expected, query.get("X-Amz-Signature", "")) else None


def _seconds_text(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def _header_safe(value: str) -> str:
    """HTTP headers are Latin-1: keep ASCII names as they are, add RFC 5987 ``filename*`` otherwise."""
    if value.isascii():
        return value
    name = value.split('filename="', 1)[-1].rstrip('"')
    fallback = name.encode("ascii", "replace").decode("ascii")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _s3_error(status: int, code: str, message: str) -> HttpReply:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{xml_escape(message)}</Message></Error>"
    )
    return HttpReply(status, body.encode("utf-8"), "application/xml")
