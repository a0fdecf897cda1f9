"""The soak's report runs: a create whose answer is lost is never paid twice; a retry reconnects.

Each try is its own process sharing a task-state store (a JSON file), as Airflow 3.3's store survives
a retry. The sandbox's faults are off here: a lost answer is the one failure under test.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from common import patent_numbers
from soak_runs import Run, Soak

from airflow_provider_patsnap.sandbox.contract import REPORT_CREATE_PATH

PAID_PHRASE = "may have been created and paid"


def report_try(soak: Soak, name: str, patent: str, state: str) -> Run:
    return Run(soak, name, "report", None, soak.args.qps, patent_number=patent, state_path=state)


def creates_since(soak: Soak, cursor: int) -> int:
    return sum(1 for record in soak.requests_since(cursor) if record["path"] == REPORT_CREATE_PATH)


def lost_answer_refused(summary: dict[str, Any]) -> bool:
    return summary.get("error_type") == "PatsnapReportError" and PAID_PHRASE in summary.get("error", "")


def report_flow(soak: Soak) -> list[str]:
    """Lose one create answer, try twice; then a normal report and its retry. Returns the download links."""
    soak.sandbox.set_fault_rate(0)
    lost_patent, paid_patent = patent_numbers(2, start=soak.args.patents)  # ids no data run asked for
    lost_state, paid_state = soak.workdir / "report-lost.state.json", soak.workdir / "report.state.json"
    for path in (lost_state, paid_state):
        path.unlink(missing_ok=True)
    start = soak.stats()
    soak.lose_create_answers(1)

    first = report_try(soak, "report-lost", lost_patent, str(lost_state))
    if not soak.finished(first, "report create, answer lost", expect_exit=1):
        return []
    cursor = soak.ledger_cursor()
    second = report_try(soak, "report-lost-retry", lost_patent, str(lost_state))
    if not soak.finished(second, "retry after the lost answer", expect_exit=1):
        return []
    second_creates = creates_since(soak, cursor)
    after_lost = soak.stats()
    created = after_lost["reports_created"] - start["reports_created"]
    soak.check(
        "lost create answer: not paid twice",
        lost_answer_refused(first.summary)
        and lost_answer_refused(second.summary)
        and second_creates == 0
        and created == 1
        and after_lost["report_answers_lost"] - start["report_answers_lost"] == 1,
        f"try 1 {first.summary.get('error_type')} ({PAID_PHRASE!r} "
        f"{'said' if lost_answer_refused(first.summary) else 'NOT said'}), try 2 "
        f"{second.summary.get('error_type')} with {second_creates} create calls; the sandbox created "
        f"{created} report job(s) and dropped {after_lost['report_answers_lost'] - start['report_answers_lost']} "
        "answer(s)",
    )

    paid = report_try(soak, "report", paid_patent, str(paid_state))
    if not soak.finished(paid, "report create"):
        return []
    cursor = soak.ledger_cursor()
    retry = report_try(soak, "report-retry", paid_patent, str(paid_state))
    if not soak.finished(retry, "report retry"):
        return []
    retry_creates = creates_since(soak, cursor)
    end = soak.stats()
    job, again = paid.summary.get("result"), retry.summary.get("result")
    links = [url for url in (paid.summary.get("download_url"), retry.summary.get("download_url")) if url]
    soak.check(
        "report retry reconnects",
        job is not None
        and again == job
        and retry_creates == 0
        and end["reports_created"] - after_lost["reports_created"] == 1
        and len(links) == 2,
        f"job {job} created and finished in {paid.seconds:.1f} s; the retry returned job {again} with "
        f"{retry_creates} create calls; report jobs created in all: {end['reports_created'] - start['reports_created']} "
        f"for 2 patents; {len(links)} download links seen",
    )
    return links


def link_secrets(links: list[str]) -> list[str]:
    """The parts of a presigned link that grant access: its path token and its signature."""
    secrets = []
    for url in links:
        parts = urlsplit(url)
        secrets.append(parts.path.split("/")[2])
        secrets.extend(parse_qs(parts.query).get("X-Amz-Signature", []))
    return secrets
