"""Progress lines, metrics and the summary block: what a long run tells the people watching it."""

from __future__ import annotations

import re
from typing import Any

import pytest

from airflow_provider_patsnap import observability
from airflow_provider_patsnap.observability import (
    METRIC_NAMES,
    Metrics,
    Progress,
    RunProgress,
    summary_block,
)


class Lines:
    """A logger that keeps what it was told."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str, *args: Any) -> None:
        self.lines.append(message % args)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def progress(batches: int, **counts: int) -> Progress:
    base = dict(patents=batches * 100, rows=batches * 250, rejects=0, billed=batches * 90)
    base.update(billed_unknown=0, calls=batches, retries=0, rate_limited=0)
    return Progress(batches=batches, **{**base, **counts})


def test_the_start_line_says_what_the_run_will_do_and_how_long_it_should_take() -> None:
    log = Lines()
    RunProgress(log, "PatSnap P026").start(requested=12_500, fresh=2_500, qps=5)
    [line] = log.lines
    assert "12,500 patent(s) requested, 10,000 after the freshness filter (2,500 skipped)" in line
    assert "100 batch(es) at qps=5 (500 patents/s at most)" in line and "about 20 s at that QPS" in line


def test_a_line_at_every_tenth_of_the_batches_and_no_more_often() -> None:
    log, clock = Lines(), Clock()
    run = RunProgress(log, "PatSnap P026", interval=30, clock=clock)
    run.start(requested=10_000, fresh=0, qps=10)
    for landed in range(1, 100):
        clock.now += 0.1
        run.update(progress(landed))
    tenths = [re.search(r"batches (\d+)/100", line)[1] for line in log.lines[1:]]  # type: ignore[index]
    assert tenths == ["10", "20", "30", "40", "50", "60", "70", "80", "90"]


def test_a_slow_run_gets_a_line_every_interval_between_tenths() -> None:
    log, clock = Lines(), Clock()
    run = RunProgress(log, "PatSnap P026", interval=30, clock=clock)
    run.start(requested=100_000, fresh=0, qps=1)
    for landed in range(1, 50):  # one batch a second: 30 s pass long before a tenth (100 batches)
        clock.now += 1
        run.update(progress(landed))
    assert len(log.lines) == 1 + 49 // 30


def test_each_line_has_every_count_the_rate_against_the_limit_and_an_eta() -> None:
    log, clock = Lines(), Clock()
    run = RunProgress(log, "PatSnap P026", clock=clock)
    run.start(requested=1_000, fresh=0, qps=5)
    clock.now += 1
    run.update(progress(1, billed_unknown=7, retries=2, rate_limited=1, rejects=3))
    [_, line] = log.lines
    for words in (
        "batches 1/10",
        "patents 100/1,000 (10%)",
        "rows 250",
        "rejects 3",
        "billed 90 (+7 maybe)",
        "calls 1",
        "retries 2",
        "rate-limited 1",
        "100 patents/s (20% of the 500 the QPS allows)",
        "ETA 9 s",
    ):
        assert words in line, (words, line)
    run.finish(progress(10))
    assert "finished: batches 10/10" in log.lines[-1] and log.lines[-1].endswith("done")


def test_metrics_never_fail_a_run(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    class BrokenStats:
        @staticmethod
        def incr(*args: Any, **kwargs: Any) -> None:
            raise OSError("statsd host unreachable")

    monkeypatch.setattr(observability, "_stats", lambda: BrokenStats)
    metrics = Metrics(dag_id="d", task_id="t")
    metrics.incr("patsnap.calls")
    metrics.incr("patsnap.calls")
    assert caplog.text.count("Sending metric patsnap.calls failed") == 1


def test_metrics_carry_their_tags(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[Any, ...]] = []

    class RecordingStats:
        @staticmethod
        def incr(name: str, count: int, *, tags: dict[str, str]) -> None:
            sent.append((name, count, tags))

    monkeypatch.setattr(observability, "_stats", lambda: RecordingStats)
    Metrics(dag_id="d", task_id="t").tagged(endpoint="P026").incr("patsnap.rows_written", 42)
    Metrics(dag_id="d").incr("patsnap.rejects", 0)  # nothing to count: nothing sent
    assert sent == [("patsnap.rows_written", 42, {"dag_id": "d", "task_id": "t", "endpoint": "P026"})]


def test_every_metric_name_is_one_airflow_accepts() -> None:
    """Airflow drops (and logs) a name with other characters or over 250 of them."""
    assert len(set(METRIC_NAMES)) == 13
    assert all(re.fullmatch(r"patsnap\.[a-z_.]+", name) and len(name) <= 250 for name in METRIC_NAMES)


def test_the_summary_block_aligns_its_values() -> None:
    block = summary_block("PatSnap P026: summary", {"requested": 12500, "destination": "warehouse:t"})
    assert block.splitlines() == [
        "PatSnap P026: summary",
        "  requested    12,500",
        "  destination  warehouse:t",
    ]
