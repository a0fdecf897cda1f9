"""Operators that enrich a list of patents with PatSnap data and land one flat row per record.

Each data operator is a few lines over :class:`PatsnapBatchOperator`: the endpoint entry of
:data:`~airflow_provider_patsnap.endpoints.ENDPOINTS` says where the data lives and what the rows look
like; the base class validates the input, fetches in batches of 100 within the connection's QPS and
writes each batch to the destination as it arrives.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from airflow_provider_patsnap._compat import BaseOperator, Context, Dataset
from airflow_provider_patsnap.endpoints import ENDPOINTS, Endpoint, IdKind, Record
from airflow_provider_patsnap.exceptions import PatsnapInputError
from airflow_provider_patsnap.hooks.patsnap import PatsnapHook
from airflow_provider_patsnap.ids import InvalidPatentIdsError, normalise_ids
from airflow_provider_patsnap.sinks import (
    ObjectStorageSink,
    Sink,
    SqlSink,
    XComSink,
    check_table_name,
    output_file,
)

MISSING_SHOWN = 10


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
        patsnap_conn_id: str = PatsnapHook.default_conn_name,
        sql_conn_id: str | None = None,
        table: str | None = None,
        output_path: str | None = None,
        xcom_row_limit: int = 10_000,
        fail_on_missing: bool = False,
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
        self.qps = qps
        self.emit_asset = emit_asset
        if xcom_row_limit < 0:
            raise ValueError(f"xcom_row_limit must be >= 0, got {xcom_row_limit!r}")
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
            return SqlSink(self.sql_conn_id, self.table or self.endpoint.default_table, self.endpoint.columns)
        if self.output_path:
            ti = context.get("ti")
            path = output_file(
                self.output_path,
                self.task_id,
                str(context.get("run_id") or "run"),
                getattr(ti, "map_index", -1) if ti is not None else -1,
            )
            return ObjectStorageSink(path)
        return XComSink(self.xcom_row_limit)

    def execute(self, context: Context) -> Any:
        try:
            kind, ids = self.validate()
        except PatsnapInputError:
            raise
        except ValueError as err:  # a retry would fail the same way: fail without retrying
            raise PatsnapInputError(str(err)) from None
        hook = PatsnapHook(self.patsnap_conn_id, qps=self.qps)
        summary: dict[str, Any] = {"endpoint": self.endpoint.code, "requested": len(ids), "rows": 0}
        billed = missing = 0
        missing_shown: list[str] = []
        with self.open_sink(context) as sink:
            for result in hook.lookup(self.endpoint, ids, kind, params=self.query_params()):
                fetched_at = datetime.now(UTC).isoformat(timespec="seconds")
                rows: list[Record] = [
                    row for patent in result.patents for row in self.endpoint.rows(patent, fetched_at)
                ]
                sink.write_batch(rows)
                summary["rows"] += len(rows)
                billed += len(result.patents)
                missing += len(result.missing)
                missing_shown.extend(result.missing[: MISSING_SHOWN - len(missing_shown)])
        summary.update(
            found=len(ids) - missing,
            missing=missing,
            billed_units=billed,
            calls=hook.stats.calls,
            retries=hook.stats.retries,
            destination=sink.location,
        )
        self.log.info("PatSnap %s %s: %s", self.endpoint.code, self.endpoint.title, summary)
        if missing:
            self.log.warning(
                "%d patent(s) had no %s data, first: %s", missing, self.endpoint.code, missing_shown
            )
        if missing and self.fail_on_missing:
            raise PatsnapInputError(
                f"{missing} of {len(ids)} patent(s) had no {self.endpoint.code} data (fail_on_missing=True); "
                f"rows for the others were written to {sink.location}. First missing: {missing_shown}"
            )
        if isinstance(sink, XComSink):
            return sink.rows
        return summary


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


_REPORT_NAMES = frozenset(
    {"PatsnapCreateValueReportOperator", "PatsnapDownloadReportOperator", "PatsnapReportJobLink"}
)


def __getattr__(name: str) -> Any:
    """The report operators live in ``operators.report``; they load from here only when asked for,
    so a DAG that uses just the data operators does not pay for their imports on every parse."""
    if name in _REPORT_NAMES:
        from airflow_provider_patsnap.operators import report

        return getattr(report, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
