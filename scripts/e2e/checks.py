"""What the end-to-end run asserts, as functions of data it collected (files, API answers, ledgers)."""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from airflow_provider_patsnap.endpoints import ENDPOINTS, Endpoint
from airflow_provider_patsnap.sandbox.data import patent_object

SCANNED_SUFFIXES_SKIPPED = (".png", ".db", ".db-journal", ".db-wal", ".db-shm", ".pdf", ".docx")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


def patent_list(csv_path: Path) -> list[str]:
    with csv_path.open(encoding="utf-8", newline="") as handle:
        return [row["patent_number"].strip() for row in csv.DictReader(handle) if row["patent_number"]]


class TableCount(NamedTuple):
    table: str
    expected: int
    found: int
    distinct: int
    missing: int
    unexpected: int


def warehouse_tables(
    warehouse: Path,
    patents: list[str],
    endpoints: Iterable[Endpoint] = ENDPOINTS.values(),
    tables: Mapping[str, str] | None = None,
) -> list[TableCount]:
    """Per table: the sandbox's own rows for the list against the rows landed, each exactly once.

    Each endpoint's rows are looked for in its default table, or in ``tables[endpoint.code]``.
    """
    counts = []
    with sqlite3.connect(warehouse) as db:
        for endpoint in endpoints:
            table = (tables or {}).get(endpoint.code, endpoint.default_table)
            expected: set[str] = set()
            for pn in patents:
                patent = patent_object(endpoint.code, "patent_number", pn, "en")  # type: ignore[arg-type]
                if patent is not None:
                    expected.update(str(row[0]) for row in endpoint.map_patent(patent, "").rows)  # record_key
            keys = [key for (key,) in db.execute(f"SELECT record_key FROM {table}")]
            found = set(keys)
            counts.append(
                TableCount(
                    table,
                    len(expected),
                    len(keys),
                    len(found),
                    len(expected - found),
                    len(found - expected),
                )
            )
    return counts


def rows_exactly_once(counts: Iterable[TableCount]) -> bool:
    return all(
        count.expected > 0 and count.found == count.distinct == count.expected and not count.unexpected
        for count in counts
    )


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def max_overlap(task_instances: Iterable[Mapping[str, Any]]) -> int:
    """The most task instances that were running at the same moment, from their start and end dates."""
    edges: list[tuple[datetime, int]] = []
    for ti in task_instances:
        if ti.get("start_date") and ti.get("end_date"):
            edges.append((_when(ti["start_date"]), 1))
            edges.append((_when(ti["end_date"]), -1))
    running = peak = 0
    for _, step in sorted(edges):  # at a tie, an end (-1) sorts before a start (+1)
        running += step
        peak = max(peak, running)
    return peak


def trigger_log_files(logs_root: Path, dag_id: str, task_id: str) -> dict[str, Path]:
    """The trigger's own log files of a task, keyed by the triggerer job id in their names."""
    files = {}
    for path in logs_root.glob(f"dag_id={dag_id}/**/task_id={task_id}/*.log.trigger.*.log"):
        files[path.name.rsplit(".trigger.", 1)[1].removesuffix(".log")] = path
    return files


class SecretHit(NamedTuple):
    path: str
    secret: str  # the name of the secret, never its value


def scan_for_secrets(roots: Iterable[Path], needles: Mapping[str, list[str]]) -> tuple[int, list[SecretHit]]:
    """Search every text file under ``roots`` for each needle; return (files scanned, hits)."""
    scanned, hits = 0, list[SecretHit]()
    values = [(name, value.encode("utf-8")) for name, group in needles.items() for value in group if value]
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            if path.name.endswith(SCANNED_SUFFIXES_SKIPPED):
                continue
            scanned += 1
            content = path.read_bytes()
            hits.extend(SecretHit(str(path), name) for name, value in values if value in content)
    return scanned, hits


def write_summary(
    artifacts: Path,
    checks: list[Check],
    observations: Mapping[str, str],
    steps: Mapping[str, float],
    elapsed: float,
    locations: Mapping[str, Path] | None = None,
    sections: Sequence[str] = (),
) -> int:
    """Write summary.json and summary.txt, print the text; return the exit code (1 on any failure).

    ``sections`` (blocks of text such as a table) follow the checks and notes; ``locations``
    (screenshots, logs, ...) are listed last, so the text says where to look next.
    """
    failed = [check for check in checks if not check.ok]
    payload = {
        "passed": not failed and bool(checks),
        "runtime_seconds": round(elapsed, 1),
        "steps": steps,
        "observations": observations,
        "checks": [check.__dict__ for check in checks],
        "locations": {name: str(path) for name, path in (locations or {}).items()},
        "sections": list(sections),
    }
    (artifacts / "summary.json").write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    lines = [f"{'PASS' if check.ok else 'FAIL'}  {check.name}: {check.detail}" for check in checks]
    lines += [f"NOTE  {name}: {seen}" for name, seen in observations.items()]
    lines += [f"\n{section}" for section in sections]
    lines.append(f"\n{len(checks) - len(failed)}/{len(checks)} checks passed in {elapsed:.0f} s")
    lines += [f"{name}: {path}" for name, path in (locations or {}).items()]
    (artifacts / "summary.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n" + "\n".join(lines), flush=True)
    return 0 if payload["passed"] else 1
