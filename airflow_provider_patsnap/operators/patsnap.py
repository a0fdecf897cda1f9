"""Operators that enrich a list of patents with PatSnap data and land one flat row per record.

Each data operator is a few lines over :class:`PatsnapBatchOperator`: the endpoint entry of
:data:`~airflow_provider_patsnap.endpoints.ENDPOINTS` says where the data lives and what the rows look
like; the base class validates the input, fetches in batches of 100 within the connection's QPS and
writes each batch to the destination as it arrives.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_patsnap._compat import BaseOperator, Context, Dataset
from airflow_provider_patsnap.connection import DEFAULT_CONN_ID
from airflow_provider_patsnap.endpoints import ENDPOINTS, Endpoint, IdKind, Record, Reject, raw_json
from airflow_provider_patsnap.exceptions import PatsnapInputError, PatsnapRejectsError
from airflow_provider_patsnap.ids import InvalidPatentIdsError, PatentMatch, normalise_ids
from airflow_provider_patsnap.sinks.base import Sink, XComSink
from airflow_provider_patsnap.sinks.names import check_table_name, output_file

if TYPE_CHECKING:  # the hook (and the HTTP stack under it) and the SQL/file sinks load at run time
    pass

MISSING_SHOWN = 10
REJECTS_SHOWN = 5


def _is_literal(value: Any) -> bool:
    """True when ``value`` is known at parse time: not an XComArg and not a Jinja template."""
    if isinstance(value, str):
        return "{{" not in value and "{%" not in value
    return isinstance(value, list | tuple | set | frozenset)


def _as_id_list(value: Any) -> Any:
    """A rendered template of a list arrives as its text (``"['CN1', 'CN2']"``): read it back."""
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            return ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            return value
    return value


class PatsnapBatchOperator(BaseOperator):
    """
    Base of the PatSnap data operators: look patents up in batches and land the rows.

    Give exactly one of ``patent_numbers`` or ``patent_ids``. With neither ``sql_conn_id`` nor
    ``output_path`` the rows are returned (to XCom); otherwise a small summary is returned.

    :param patent_numbers: Patent numbers such as ``CN110650438A``: a list, a comma-separated string,
        a template, or an XComArg from an upstream task. (templated)
    :param patent_ids: PatSnap patent ids, in the same forms. (templated)
    :param patsnap_conn_id: The PatSnap connection. (templated)
    :param sql_conn_id: A database connection (a common.sql hook; SQLite and PostgreSQL are tested, other
        databases are listed in docs/compatibility.md) to upsert the rows into. (templated)
    :param table: The table for ``sql_conn_id``, created if missing; defaults to the endpoint's table,
        for example ``patsnap_award``. (templated)
    :param output_path: An object storage path (``file://``, ``s3://``, ...) for newline-delimited JSON.
        A path ending in ``/`` (or an existing directory) gets ``<task_id>/<run_id>.jsonl`` under it;
        template a file name with ``{{ ds }}`` for one file per run. (templated)
    :param xcom_row_limit: Most rows returned to XCom when no destination is set.
    :param fail_on_missing: Fail, after every row is written, when some patents have no data.
    :param max_rejects: Most records allowed to be rejected (a value that cannot be stored, a payload
        of a shape the mapping does not know, an object matching no requested id). Rejects are kept
        in ``<table>_rejects`` or ``<file>.rejects.jsonl`` and the load goes on; with more than this
        the task fails after everything else has landed.
    :param qps: Requests per second for this task, overriding the connection's ``qps`` (for example a
        share of the vendor's QPS per mapped shard).
    :param emit_asset: Declare the table (``patsnap://<sql_conn_id>/<table>``) or the file as an
        outlet Asset (Dataset on Airflow 2). Needs a literal, untemplated destination.
    """

    endpoint: ClassVar[Endpoint]
    template_fields: Sequence[str] = (
        "patent_numbers",
        "patent_ids",
        "patsnap_conn_id",
        "sql_conn_id",
        "table",
        "output_path",
    )
    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        patent_numbers: Any = None,
        patent_ids: Any = None,
        patsnap_conn_id: str = DEFAULT_CONN_ID,
        sql_conn_id: str | None = None,
        table: str | None = None,
        output_path: str | None = None,
        xcom_row_limit: int = 10_000,
        fail_on_missing: bool = False,
        max_rejects: int = 10,
        qps: float | None = None,
        emit_asset: bool = False,
        **kwargs: Any,
    ) -> None:
        if emit_asset:
            kwargs["outlets"] = [*(kwargs.get("outlets") or []), self._asset(sql_conn_id, table, output_path)]
        super().__init__(**kwargs)
        self.patent_numbers = patent_numbers
        self.patent_ids = patent_ids
        self.patsnap_conn_id = patsnap_conn_id
        self.sql_conn_id = sql_conn_id
        self.table = table
        self.output_path = output_path
        self.xcom_row_limit = xcom_row_limit
        self.fail_on_missing = fail_on_missing
        self.max_rejects = max_rejects
        self.qps = qps
        self.emit_asset = emit_asset
        if xcom_row_limit < 0:
            raise ValueError(f"xcom_row_limit must be >= 0, got {xcom_row_limit!r}")
        if max_rejects < 0:
            raise ValueError(f"max_rejects must be >= 0, got {max_rejects!r}")
        if qps is not None and qps <= 0:
            raise ValueError(f"qps must be > 0, got {qps!r}")
        self.validate(literal_only=True)

    # --- validation ----------------------------------------------------------------------------------

    def _asset(self, sql_conn_id: str | None, table: str | None, output_path: str | None) -> Dataset:
        target = (
            output_path if output_path else f"patsnap://{sql_conn_id}/{table or self.endpoint.default_table}"
        )
        if not (sql_conn_id or output_path) or not _is_literal(target):
            raise ValueError(
                "emit_asset=True needs a literal sql_conn_id (and table) or output_path; for a templated "
                f"destination declare outlets=[...] yourself (got {target!r})"
            )
        return Dataset(target if "://" in target else f"file://{target}")

    def validate(self, literal_only: bool = False) -> tuple[IdKind, list[str]]:
        """Check every input; return the id kind and the ids (empty when not known yet).

        With ``literal_only`` (at DAG parse time) values still to be templated or pulled are skipped.
        """
        given = {
            kind: value
            for kind, value in (("patent_number", self.patent_numbers), ("patent_id", self.patent_ids))
            if value is not None
        }
        if len(given) != 1:
            state = "both were given" if given else "neither was given (or an upstream XCom was None)"
            raise ValueError(f"give exactly one of patent_numbers or patent_ids: {state}")
        kind, value = next(iter(given.items()))
        ids: list[str] = []
        if isinstance(value, str) and not value.strip():
            raise InvalidPatentIdsError(f"no {kind} values given: {value!r}")
        if _is_literal(value) or not literal_only:
            ids = normalise_ids(_as_id_list(value), kind)  # type: ignore[arg-type]
        if self.sql_conn_id and self.output_path:
            raise ValueError(
                f"give one destination: sql_conn_id={self.sql_conn_id!r} and "
                f"output_path={self.output_path!r} were both given"
            )
        if self.table is not None and not self.sql_conn_id:
            raise ValueError(f"table={self.table!r} needs sql_conn_id")
        if self.table is not None and (_is_literal(self.table) or not literal_only):
            check_table_name(self.table)
        self.validate_params(literal_only)
        return kind, ids  # type: ignore[return-value]

    def validate_params(self, literal_only: bool) -> None:
        """Check endpoint parameters such as P022's ``lang``; nothing to check by default."""

    def query_params(self) -> dict[str, Any]:
        """Extra query parameters of the endpoint."""
        return {}

    # --- run -----------------------------------------------------------------------------------------

    def open_sink(self, context: Context) -> Sink:
        if self.sql_conn_id:
            from airflow_provider_patsnap.sinks.sql import SqlSink

            return SqlSink(
                self.sql_conn_id,
                self.table or self.endpoint.default_table,
                self.endpoint.columns,
                endpoint=self.endpoint.code,
            )
        if self.output_path:
            ti = context.get("ti")
            path = output_file(
                self.output_path,
                self.task_id,
                str(context.get("run_id") or "run"),
                getattr(ti, "map_index", -1) if ti is not None else -1,
            )
            from airflow_provider_patsnap.sinks.files import ObjectStorageSink

            return ObjectStorageSink(path)
        return XComSink(self.xcom_row_limit)

    def execute(self, context: Context) -> Any:
        try:
            kind, ids = self.validate()
        except PatsnapInputError:
            raise
        except ValueError as err:  # a retry would fail the same way: fail without retrying
            raise PatsnapInputError(str(err)) from None
        from airflow_provider_patsnap.hooks.patsnap import PatsnapHook

        hook = self._hook = PatsnapHook(self.patsnap_conn_id, qps=self.qps)
        tally = _Tally()
        with self.open_sink(context) as sink:  # opened (and a table checked) before any paid call
            batches = hook.lookup(self.endpoint, ids, kind, params=self.query_params(), validated=True)
            for result in batches:
                rows, rejects = self._map_batch(result.match, kind, tally)
                kept = sink.write_batch(rows, rejects)
                tally.count_rejects(kept)
                tally.rows += len(rows) - (len(kept) - len(rejects))  # less rows the destination refused
                tally.billed += len(result.patents)
        summary = {
            "endpoint": self.endpoint.code,
            "requested": len(ids),
            "found": len(ids) - tally.missing,
            "missing": tally.missing,
            "rows": tally.rows,
            "rejects": tally.rejects,
            "unrequested": tally.unrequested,
            "duplicates": tally.duplicates,
            "billed_units": tally.billed,
            "calls": hook.stats.calls,
            "retries": hook.stats.retries,
            "write_retries": getattr(sink, "write_retries", 0),
            "destination": sink.location,
            "rejects_destination": sink.rejects_location,
        }
        self.log.info("PatSnap %s %s: %s", self.endpoint.code, self.endpoint.title, summary)
        self._check_outcome(tally, len(ids), sink)
        if isinstance(sink, XComSink):
            return sink.rows
        return summary

    def on_kill(self) -> None:
        """Stop at once: no new call, waits abandoned, calls in flight cut; what was written stays."""
        hook = getattr(self, "_hook", None)
        if hook is not None:
            hook.cancel()

    def _map_batch(
        self, match: PatentMatch, kind: IdKind, tally: _Tally
    ) -> tuple[list[Record], list[Reject]]:
        """Rows and rejects of one batch; only objects matching a requested id, each once, become rows."""
        fetched_at = datetime.now(UTC).isoformat(timespec="seconds")
        tally.missing += len(match.missing)
        tally.missing_shown.extend(match.missing[: MISSING_SHOWN - len(tally.missing_shown)])
        tally.duplicates += match.duplicates
        tally.unrequested += len(match.unrequested)
        if match.unrequested or match.duplicates:
            self.log.warning(
                "PatSnap %s returned %d object(s) for patents not requested (dropped, first: %s) and %d "
                "duplicate object(s) (one kept per patent)",
                self.endpoint.code,
                len(match.unrequested),
                [patent.get("pn") or patent.get("patent_id") for patent in match.unrequested[:3]],
                match.duplicates,
            )
        field_name = "patent_id" if kind == "patent_id" else "pn"
        rejects = [
            Reject(
                self.endpoint.code,
                None,
                None,
                f"{self.endpoint.code} object without a usable {field_name}: cannot be matched to a "
                "requested patent",
                raw_json(patent),
            )
            for patent in match.unmatched
        ]
        rows: list[Record] = []
        for patent in match.matched:
            mapped = self.endpoint.map_patent(patent, fetched_at)
            rows.extend(mapped.rows)
            rejects.extend(mapped.rejects)
        return rows, rejects

    def _check_outcome(self, tally: _Tally, requested: int, sink: Sink) -> None:
        if tally.missing:
            self.log.warning(
                "%d patent(s) had no %s data, first: %s",
                tally.missing,
                self.endpoint.code,
                tally.missing_shown,
            )
        if tally.rejects:
            self.log.warning(
                "%d record(s) rejected, kept in %s; first reasons: %s",
                tally.rejects,
                sink.rejects_location,
                tally.rejects_shown,
            )
        if tally.rejects > self.max_rejects:
            raise PatsnapRejectsError(
                f"{tally.rejects} {self.endpoint.code} record(s) rejected, more than max_rejects="
                f"{self.max_rejects}; every other row was written to {sink.location} and the rejects, with "
                f"their reasons and raw values, to {sink.rejects_location}. First: {tally.rejects_shown}"
            )
        if tally.missing and self.fail_on_missing:
            raise PatsnapInputError(
                f"{tally.missing} of {requested} patent(s) had no {self.endpoint.code} data "
                f"(fail_on_missing=True); rows for the others were written to {sink.location}. "
                f"First missing: {tally.missing_shown}"
            )


@dataclass
class _Tally:
    """What a run has counted so far, across batches."""

    rows: int = 0
    billed: int = 0
    missing: int = 0
    rejects: int = 0
    unrequested: int = 0
    duplicates: int = 0
    missing_shown: list[str] = field(default_factory=list)
    rejects_shown: list[str] = field(default_factory=list)

    def count_rejects(self, rejects: list[Reject]) -> None:
        self.rejects += len(rejects)
        self.rejects_shown.extend(
            reject.reason for reject in rejects[: REJECTS_SHOWN - len(self.rejects_shown)]
        )


class PatsnapSeicClassificationOperator(PatsnapBatchOperator):
    """
    P022 strategic emerging industry (SEIC) classification: one row per classification.

    :param lang: Language of the descriptions, ``en`` or ``cn``. (templated)
    """

    endpoint = ENDPOINTS["P022"]
    template_fields: Sequence[str] = (*PatsnapBatchOperator.template_fields, "lang")

    def __init__(self, *, lang: str = "en", **kwargs: Any) -> None:
        self.lang = lang
        super().__init__(**kwargs)

    def validate_params(self, literal_only: bool) -> None:
        allowed = self.endpoint.params["lang"]
        if (_is_literal(self.lang) or not literal_only) and self.lang not in allowed:
            raise ValueError(f"lang must be one of {allowed}, got {self.lang!r}")

    def query_params(self) -> dict[str, Any]:
        return {"lang": self.lang}


class PatsnapAwardOperator(PatsnapBatchOperator):
    """P032 awards a patent received: one row per award."""

    endpoint = ENDPOINTS["P032"]


class PatsnapCustomsRecordOperator(PatsnapBatchOperator):
    """P031 customs protection records: one row per record."""

    endpoint = ENDPOINTS["P031"]


class PatsnapLegalInformationOperator(PatsnapBatchOperator):
    """P026 legal events: one row per INPADOC or official event, told apart by ``source``."""

    endpoint = ENDPOINTS["P026"]


_REPORT_NAMES = frozenset({"PatsnapCreateValueReportOperator", "PatsnapDownloadReportOperator"})


def __getattr__(name: str) -> Any:
    """The report operators live in ``operators.report``; they load from here only when asked for,
    so a DAG that uses just the data operators does not pay for their imports on every parse."""
    if name in _REPORT_NAMES:
        from airflow_provider_patsnap.operators import report

        return getattr(report, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
