"""What the example DAGs expect to find when they run, made for `make smoke` and the system tests.

Stdlib only. The examples are templates: a portfolio table, a PostgreSQL warehouse or a bucket is the
user's; here a SQLite file, a throwaway PostgreSQL cluster and a ``file://`` folder stand in for them.
"""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

from scripts.airflow_env import EXAMPLE_DAGS

PATENT_LIST = EXAMPLE_DAGS / "data" / "patents.csv"
#: patsnap_warehouse_ids selects ``owner = 'acme' AND active = 1`` from this table.
PORTFOLIO_TABLE = "patsnap_portfolio"
#: patsnap_object_storage writes under this (an ObjectStoragePath URL) instead of its bucket.
LAKE_VARIABLE = "PATSNAP_LAKE"


def shipped_patents() -> list[str]:
    with PATENT_LIST.open(encoding="utf-8", newline="") as handle:
        return [row["patent_number"].strip() for row in csv.DictReader(handle) if row["patent_number"]]


def seed_portfolio(warehouse: Path) -> list[str]:
    """A portfolio of the shipped patents in the SQLite file ``warehouse``: every 10th belongs to another
    owner and every 7th is inactive. Returns the numbers the example's query selects."""
    rows = [
        (number, "other" if i % 10 == 9 else "acme", 0 if i % 7 == 6 else 1)
        for i, number in enumerate(shipped_patents())
    ]
    with sqlite3.connect(warehouse) as db:
        db.execute(
            f"CREATE TABLE IF NOT EXISTS {PORTFOLIO_TABLE} "
            "(patent_number TEXT NOT NULL, owner TEXT NOT NULL, active INTEGER NOT NULL)"
        )
        db.execute(f"DELETE FROM {PORTFOLIO_TABLE}")
        db.executemany(f"INSERT INTO {PORTFOLIO_TABLE} VALUES (?, ?, ?)", rows)
    return [number for number, owner, active in rows if owner == "acme" and active]
