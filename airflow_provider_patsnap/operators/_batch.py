"""The base of the data operators: validate, skip what is fresh, fetch within a budget, land the rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, cast

from airflow_provider_patsnap._compat import (
    BaseOperator,
    BaseOperatorLink,
    Context,
    Dataset,
    DatasetAlias,
    ObjectStoragePath,
    asset_alias_known,
    pool_slots,
    retry_policy_kwargs,
)
from airflow_provider_patsnap._gc import long_lived_objects_frozen
from airflow_provider_patsnap.arguments import number, seconds, whole_number
from airflow_provider_patsnap.connection import DEFAULT_CONN_ID, NUMERIC_EXTRAS
from airflow_provider_patsnap.endpoints import Endpoint, IdKind
from airflow_provider_patsnap.exceptions import InvalidPatentIdsError, PatsnapBudgetError, PatsnapInputError
from airflow_provider_patsnap.hooks._billing import BillingMeter
from airflow_provider_patsnap.id_sources import IdSource, source_of
from airflow_provider_patsnap.ids import PatentIds
from airflow_provider_patsnap.observability import Metrics, summary_block
from airflow_provider_patsnap.operators._id_stream import FreshFilter, IdStream
from airflow_provider_patsnap.operators._inputs import as_duration, as_id_list, is_literal
from airflow_provider_patsnap.operators._outcome import RunTotals, estimate_summary, summary
from airflow_provider_patsnap.operators._run import DataRun
from airflow_provider_patsnap.retry import DEFAULT_RETRY_POLICY
from airflow_provider_patsnap.sinks.base import (
    WRITE_MODES,
    LastingDestination,
    Sink,
    XComSink,
)
from airflow_provider_patsnap.sinks.names import check_table_name, file_format_of, output_file
from airflow_provider_patsnap.sinks.runs import RunCounts, RunRecord, TaskTry
from airflow_provider_patsnap.sinks.state import FetchState

if TYPE_CHECKING:  # the hook, and the HTTP stack under it, load when a task runs, not on DAG parse
    from airflow_provider_patsnap.hooks.patsnap import PatsnapHook
    from airflow_provider_patsnap.lineage import LineageDataset, LineageRun


class Inputs(NamedTuple):
    """A task's ids as given: a validated list, or a source read when the task runs (one is None)."""

    kind: IdKind
    ids: PatentIds | None
    source: IdSource | None


#: The pool a task runs in when its DAG names none: it bounds nothing PatSnap-specific.
DEFAULT_POOL = "default_pool"
#: The context key a mapped task's ``map_index_template`` can show: ``"shard 3/8: 12,500 ids"``.
MAP_INDEX_KEY = "patsnap_ids"


def utc_now() -> datetime:
    """The operators' clock (tests replace it): row times, history validity, freshness."""
    return datetime.now(UTC)


#: Where the docs of each table live: the project's documentation (no credential, nothing of the run).
DOCS_URL = "https://github.com/airflow-provider-patsnap/airflow-provider-patsnap/blob/main/docs"


class PatsnapColumnsLink(BaseOperatorLink):
    """A link on every data task to what its table's columns mean (docs/destinations.md). It carries
    nothing of the run: no credential, no presigned link, nothing the task wrote."""

    name = "PatSnap columns"

    def get_link(self, operator: Any, *, ti_key: Any = None) -> str:
        endpoint = _endpoint_of(operator)
        anchor = f"#{endpoint.docs_anchor}" if endpoint is not None else ""
        return f"{DOCS_URL}/destinations.md{anchor}"


def _endpoint_of(operator: Any) -> Endpoint | None:
    """The operator's endpoint; Airflow 2.11's webserver passes the serialized task, whose task_type is
    the operator's class name."""
    if isinstance(operator, PatsnapBatchOperator):
        return operator.endpoint
    pending = list(PatsnapBatchOperator.__subclasses__())
    while pending:
        candidate = pending.pop()
        if candidate.__name__ == getattr(operator, "task_type", None) and hasattr(candidate, "endpoint"):
            return candidate.endpoint
        pending += candidate.__subclasses__()
    return None


class PatsnapBatchOperator(BaseOperator):
    """
    Base of the PatSnap data operators: look patents up in batches and land the rows.

    Give exactly one of ``patent_numbers`` or ``patent_ids``. With neither ``sql_conn_id`` nor
    ``output_path`` the rows are returned (to XCom); otherwise a small summary is returned.

    :param patent_numbers: Patent numbers such as ``CN110650438A``: a list, a comma-separated string,
        a template, or an XComArg from an upstream task. (templated)
    :param patent_ids: PatSnap patent ids, in the same forms. (templated)
    :param patsnap_conn_id: The PatSnap connection. (templated)
    :param sql_conn_id: A database connection to write the rows into: SQLite, PostgreSQL, MySQL/MariaDB or
        DuckDB (docs/compatibility.md); any other database is refused before the first paid call.
        (templated)
    :param table: The table for ``sql_conn_id``, created if missing; defaults to the endpoint's table,
        for example ``patsnap_award``. (templated)
    :param write_mode: How rows land in ``table`` (docs/destinations.md): ``sync`` (the default: each
        fetched patent's rows become exactly what PatSnap returned, vanished rows deleted), ``merge``
        (upsert only: nothing is ever deleted) or ``history`` (every version kept, with ``valid_from``
        / ``valid_to``). SQL destinations only.
    :param refresh_after: Skip patents this table's ``<table>_state`` says were fetched less than this
        long ago (with data or without): a ``timedelta``, seconds, or text such as ``"7d"``. SQL only.
    :param max_billed_units: Most units this run may be billed: the task stops with
        :class:`PatsnapBudgetError` before a call that could go past it, after writing what it fetched.
    :param estimate_only: Call nothing: return how many patents would be requested (after
        ``refresh_after``) and the most units that could cost.
    :param output_path: An object storage path (``file://``, ``s3://``, ...) for one file per run, as
        text or as an ``ObjectStoragePath`` (``ObjectStoragePath("s3://aws_default@bucket/x") / "{{ ds
        }}.jsonl"``, read as its text, which keeps the connection id): a name ending in ``.parquet`` is
        written as Parquet (the ``parquet`` extra), any other as newline-delimited JSON. A path ending in ``/`` (or an existing directory) gets
        ``<task_id>/<run_id>.jsonl`` (``.parquet`` with ``file_format="parquet"``) under it; template a
        file name with ``{{ ds }}`` for one file per run. (templated)
    :param file_format: The format of the files of a folder ``output_path``: ``jsonl`` (the default)
        or ``parquet``. A file name says its own format: a ``file_format`` it contradicts is refused.
    :param xcom_row_limit: Most rows returned to XCom when no destination is set.
    :param fail_on_missing: Fail, after every row is written, when some patents have no data.
    :param max_rejects: Most records allowed to be rejected (a value that cannot be stored, an object
        matching no requested id). Rejects are kept in ``<table>_rejects`` or ``<file>.rejects.jsonl``
        and the load goes on; with more than this the task fails after everything else has landed. A
        payload of a shape the mapping does not know is kept the same way but always fails the task.
    :param qps: Requests per second for this task, overriding the connection's ``qps`` (for example a
        share of the vendor's QPS per mapped shard).
    :param progress_interval: Seconds between progress lines in the task log at most (a line also comes at
        every tenth of the batches); docs/observability.md.
    :param emit_asset: Declare an outlet AssetAlias (DatasetAlias on Airflow 2.11) named after the DAG,
        the task and the destination as written, and, once the rows landed, attach to it the table (as
        its database resolved it) or the file the run wrote as an Asset under the URI its OpenLineage
        output has (docs/lineage.md). No connection is read when the DAG file is parsed. Needs a
        literal, untemplated destination.
    :param retry_policy: Airflow 3.3+: what a failure leads to (AIP-105). The default,
        :class:`~airflow_provider_patsnap.retry.PatsnapRetryPolicy`, fails bad input, quota, permission,
        budget and rejects at once and retries rate limits and transient errors after PatSnap's
        ``Retry-After`` (docs/errors.md); ``None`` leaves every failure to Airflow's usual rules. Older
        Airflow lines take no policy: there it must be the default or None and changes nothing.
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
    operator_extra_links = (PatsnapColumnsLink(),)

    def __init__(
        self,
        *,
        patent_numbers: Any = None,
        patent_ids: Any = None,
        patsnap_conn_id: str = DEFAULT_CONN_ID,
        sql_conn_id: str | None = None,
        table: str | None = None,
        write_mode: str | None = None,
        refresh_after: timedelta | float | str | None = None,
        max_billed_units: int | None = None,
        estimate_only: bool = False,
        output_path: str | ObjectStoragePath | None = None,
        file_format: str | None = None,
        xcom_row_limit: int = 10_000,
        fail_on_missing: bool = False,
        max_rejects: int = 10,
        qps: float | None = None,
        emit_asset: bool = False,
        progress_interval: float = 30.0,
        retry_policy: Any = DEFAULT_RETRY_POLICY,
        **kwargs: Any,
    ) -> None:
        super().__init__(**retry_policy_kwargs(retry_policy), **kwargs)
        self.patent_numbers = patent_numbers
        self.patent_ids = patent_ids
        self.patsnap_conn_id = patsnap_conn_id
        self.sql_conn_id = sql_conn_id
        self.table = table
        self.write_mode = write_mode
        self.refresh_after = as_duration(refresh_after, "refresh_after")
        self.max_billed_units = max_billed_units
        self.estimate_only = estimate_only
        self.output_path = _as_text(output_path)  # templated as text, like a URL given as text
        self.file_format = file_format
        self.xcom_row_limit = xcom_row_limit
        self.fail_on_missing = fail_on_missing
        self.max_rejects = max_rejects
        self.qps = qps
        self.emit_asset = emit_asset
        self.progress_interval = progress_interval
        #: The outlet alias of ``emit_asset``: the concrete asset is attached to it at run time.
        self.asset_alias = self._alias(sql_conn_id, table, self.output_path) if emit_asset else None
        if self.asset_alias is not None:  # a new list: the caller's own outlets list stays as it was
            self.outlets = [*self.outlets, self.asset_alias]  # type: ignore[has-type]
        self._hook: PatsnapHook | None = None  # set by execute: on_kill cancels its calls
        self._lineage_run: LineageRun | None = None  # set by execute for the OpenLineage listener
        # Counts are ints >= 0: 2.5, nan, "5" or True would fail mid-run, or never trigger (nan).
        whole_number("xcom_row_limit", xcom_row_limit)
        whole_number("max_rejects", max_rejects)
        if max_billed_units is not None:
            whole_number("max_billed_units", max_billed_units)
        if qps is not None:  # this task's own limit: 0 (no limit) is the connection's to set
            number("qps", qps, above_minimum=True, maximum=NUMERIC_EXTRAS["qps"][2])
        seconds("progress_interval", progress_interval, above_minimum=True)
        self.validate(literal_only=True)

    # --- validation ----------------------------------------------------------------------------------

    def _alias(self, sql_conn_id: str | None, table: str | None, output_path: str | None) -> DatasetAlias:
        """The outlet alias of ``emit_asset``, named from the DAG file alone (docs/lineage.md): no
        connection is read while the file is parsed; the asset is attached when the task has run."""
        from airflow_provider_patsnap.lineage import alias_name, file_dataset

        given = [value for value in (sql_conn_id, table, output_path) if value is not None]
        if not (sql_conn_id or output_path) or not all(is_literal(value) for value in given):
            raise ValueError(
                "emit_asset=True needs a literal sql_conn_id (and table) or output_path; for a templated "
                f"destination declare outlets=[...] yourself (got {[_shown(value) for value in given]!r})"
            )
        if output_path:
            file_dataset(output_path)  # a relative path names no one file: refused now, not at run time
        dag_id = self.dag.dag_id if self.has_dag() else None
        return DatasetAlias(
            alias_name(dag_id, self.task_id, sql_conn_id, table or self.endpoint.default_table, output_path)
        )

    def validate(self, literal_only: bool = False) -> Inputs:
        """Check every input; return the id kind and the ids (None when not known yet, or when they come
        from a source, which is read when the task runs).

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
        ids: PatentIds | None = None
        if isinstance(value, str) and not value.strip():
            raise InvalidPatentIdsError(f"no {kind} values given: {value!r}")
        source = source_of(value)
        if source is None and (is_literal(value) or not literal_only):
            ids = PatentIds.of(as_id_list(value), kind)  # type: ignore[arg-type]
        if self.sql_conn_id and self.output_path:
            raise ValueError(
                f"give one destination: sql_conn_id={self.sql_conn_id!r} and "
                f"output_path={_shown(self.output_path)!r} were both given"
            )
        if self.table is not None and not self.sql_conn_id:
            raise ValueError(f"table={self.table!r} needs sql_conn_id")
        if self.table is not None and (is_literal(self.table) or not literal_only):
            check_table_name(self.table)
        self._validate_warehouse_options()
        self._validate_file_options(literal_only)
        self.validate_params(literal_only)
        return Inputs(kind, ids, source)  # type: ignore[arg-type]

    def _validate_warehouse_options(self) -> None:
        if self.write_mode is not None and self.write_mode not in WRITE_MODES:
            raise ValueError(f"write_mode must be one of {WRITE_MODES}, got {self.write_mode!r}")
        if self.write_mode is not None and not self.sql_conn_id:
            raise ValueError(
                f"write_mode={self.write_mode!r} needs sql_conn_id: a file holds the rows of one run, "
                "and XCom returns them"
            )
        if self.refresh_after is not None and not self.sql_conn_id:
            raise ValueError(
                "refresh_after needs sql_conn_id: what was fetched when is kept in <table>_state"
            )

    def _validate_file_options(self, literal_only: bool) -> None:
        if self.file_format is not None and not self.output_path:
            raise ValueError(f"file_format={self.file_format!r} needs output_path")
        if self.output_path and (is_literal(self.output_path) or not literal_only):
            file_format_of(self.output_path, self.file_format)

    def validate_params(self, literal_only: bool) -> None:
        """Check endpoint parameters such as P022's ``lang``; nothing to check by default."""

    def query_params(self) -> dict[str, Any]:
        """Extra query parameters of the endpoint."""
        return {}

    # --- run -----------------------------------------------------------------------------------------

    @property
    def destination_table(self) -> str:
        return self.table or self.endpoint.default_table

    def fetch_state(self, kind: IdKind) -> FetchState:
        return FetchState(self.endpoint.code, kind, self.query_params())

    def open_table(self, kind: IdKind, hook: PatsnapHook) -> LastingDestination:
        """The SQL table of ``sql_conn_id``, created or checked now, before any paid call; ``on_kill``
        ends its waits through ``hook``'s cancellation."""
        from airflow_provider_patsnap.sinks.sql import SqlSink  # run time only: DAG files do not pay for it

        return SqlSink(
            str(self.sql_conn_id),
            self.destination_table,
            self.endpoint.columns,
            endpoint=self.endpoint.code,
            write_mode=self.write_mode or "sync",  # type: ignore[arg-type]
            id_kind=kind,
            state=self.fetch_state(kind),
            cancellation=hook.transport.cancellation,
        )

    def open_run_sink(self, context: Context) -> Sink:
        """Where rows go when they do not go to a table: the run's file under ``output_path``, or XCom."""
        if self.output_path:
            ti = context.get("ti")
            path = output_file(
                self.output_path,
                self.task_id,
                str(context.get("run_id") or "run"),
                ti.map_index if ti is not None and ti.map_index is not None else -1,
                self.file_format,
            )
            if file_format_of(self.output_path, self.file_format) == "parquet":
                from airflow_provider_patsnap.sinks.parquet import ParquetSink  # imports pyarrow, here only

                return ParquetSink(path, self.endpoint.columns, endpoint=self.endpoint.code)
            from airflow_provider_patsnap.sinks.files import NdjsonSink

            return NdjsonSink(path, self.endpoint.columns)
        return XComSink(self.endpoint.columns, self.xcom_row_limit)

    def execute(self, context: Context) -> Any:
        try:
            kind, ids, source = self.validate()
        except PatsnapInputError:
            raise
        except ValueError as err:  # a retry would fail the same way: fail without retrying
            raise PatsnapInputError(str(err)) from None
        meter = BillingMeter(self.max_billed_units)
        if self.estimate_only:
            return self._estimate(IdStream(kind, ids, source, self._estimate_fresh_filter(kind), meter))
        from airflow_provider_patsnap.hooks.patsnap import PatsnapHook

        hook = self._hook = PatsnapHook(self.patsnap_conn_id, qps=self.qps)
        hook.metrics = Metrics(dag_id=self.dag_id, task_id=self.task_id)
        self._check_qps_sharing(hook)
        totals = RunTotals(meter=meter)
        started_at = utc_now()
        # Opened (and a table checked) before any paid call.
        table = self.open_table(kind, hook) if self.sql_conn_id else None
        sink = table if table is not None else self.open_run_sink(context)
        failure: Exception | None = None
        try:
            with sink:
                fresh_filter = None
                if table is not None and self.refresh_after is not None and source is not None:
                    # A source's chunks are checked as the calls go out, on the pipeline's thread: there
                    # each check opens a connection of its own (SQLite refuses the sink's, made on this
                    # thread, and a read's commit on it could land between a write's statements).
                    fresh_filter = self._estimate_fresh_filter(kind)
                elif table is not None and self.refresh_after is not None:
                    now, since = utc_now(), utc_now() - self.refresh_after
                    fresh_filter = partial(table.fresh, since=since, now=now)
                stream = IdStream(kind, ids, source, fresh_filter, meter)
                plan = stream.plan()  # every id validated before the first paid call
                # What map_index_template="{{ patsnap_ids }}" shows for a mapped task: shard and size.
                shard = f"{source.shard.label()}: " if source is not None and source.shard else ""
                cast(dict, context)[MAP_INDEX_KEY] = f"{shard}{plan.requested:,} ids"
                record = RunRecord(
                    TaskTry.of(context, self.dag_id, self.task_id),
                    self.endpoint.code,
                    sink.location,
                    table.write_mode if table is not None else None,
                    started_at,
                    RunCounts(),
                )
                run = DataRun(
                    self.endpoint,
                    hook,
                    sink,
                    stream,
                    totals,
                    record,
                    params=self.query_params(),
                    now=utc_now,
                    log=self.log,
                    progress_interval=self.progress_interval,
                )
                try:
                    with long_lived_objects_frozen():
                        run.run(plan.requested, plan.fresh)
                except BaseException as error:
                    sink.finish_run(run.record(error))
                    raise
                result = summary(self.endpoint.code, plan.requested, totals, sink, table, hook)
                failure = self._outcome_failure(totals, plan.requested, sink, result)
                sink.finish_run(run.record(failure))
            self.log.info(
                "%s", summary_block(f"PatSnap {self.endpoint.code} {self.endpoint.title}: summary", result)
            )
            self._remember_lineage(hook, sink, totals.rows, table)
            self._attach_asset(context, totals.rows)
            if failure is not None:
                raise failure
        except Exception:
            if isinstance(sink, XComSink):
                keep_paid_rows(context, sink, self.log)
            raise
        if isinstance(sink, XComSink):
            return sink.rows
        return result

    def _check_qps_sharing(self, hook: PatsnapHook) -> None:
        """Warn when tasks like this one could together call faster than the connection's qps: without
        the Redis-shared limiter each task keeps its own, and only a pool bounds how many run at once."""
        settings = hook.settings
        if settings.rate_limit_redis_conn_id or settings.qps <= 0:
            return
        vendor_qps = hook.connection_qps
        if self.pool == DEFAULT_POOL:
            self.log.warning(
                "This task calls at qps=%g in no pool of its own: N such tasks running at once call at "
                "N x %g, and PatSnap allows %g. Put PatSnap tasks in a pool with slots x qps <= %g, or share "
                "one QPS between every task through Redis (the connection extra rate_limit_redis_conn_id: "
                "docs/performance.md)",
                settings.qps,
                settings.qps,
                vendor_qps,
                vendor_qps,
            )
            return
        slots = pool_slots(self.pool)
        per_slot = settings.qps / max(self.pool_slots, 1)
        if slots is None:
            self.log.info(
                "Pool %r: its slots x qps per slot (%g) must stay <= the connection's qps %g; a task cannot "
                "read a pool's size on Airflow 3, so this is not checked (rate_limit_redis_conn_id makes it "
                "unnecessary)",
                self.pool,
                per_slot,
                vendor_qps,
            )
        elif slots * per_slot > vendor_qps + 1e-9:
            self.log.warning(
                "Pool %r has %d slot(s); at qps=%g per %d slot(s), tasks in it may call at %g, above the "
                "connection's qps %g: lower qps to %g or the pool to %d slot(s)",
                self.pool,
                slots,
                settings.qps,
                self.pool_slots,
                slots * per_slot,
                vendor_qps,
                vendor_qps * self.pool_slots / slots,
                int(vendor_qps // per_slot),
            )

    def _estimate_fresh_filter(self, kind: IdKind) -> FreshFilter | None:
        """Which ids a run would skip, read from the table's state without creating anything."""
        if self.refresh_after is None or not self.sql_conn_id:
            return None
        from airflow_provider_patsnap.sinks.sql_database import fresh_in  # run time only

        now, since = utc_now(), utc_now() - self.refresh_after
        state = self.fetch_state(kind)
        return partial(fresh_in, self.sql_conn_id, self.destination_table, state, since=since, now=now)

    def _estimate(self, stream: IdStream) -> dict[str, Any]:
        """What a run would request after the freshness filter, read without calling PatSnap."""
        estimate = estimate_summary(self.endpoint.code, stream.plan(), self.max_billed_units)
        self.log.info("PatSnap %s estimate (nothing called): %s", self.endpoint.code, estimate)
        return estimate

    def _remember_lineage(
        self, hook: PatsnapHook, sink: Sink, rows: int, table: LastingDestination | None
    ) -> None:
        """The run's lineage: a table under the identity the sink resolved (one name for ``t``,
        ``public.t`` and ``T`` on PostgreSQL), a file where it really went."""
        from airflow_provider_patsnap.lineage import LineageRun, destination_dataset, endpoint_dataset

        # A file is named as its sink wrote it (``sink.location``): <folder>/<task_id>/<run_id>.jsonl for a
        # folder, a mapped task's own file, a relative path made absolute. One rule, the sink's. A table
        # as the sink resolved it.
        written = sink.location if self.output_path else None
        table_name = table.identity.qualified if table is not None else self.destination_table
        destination = destination_dataset(self.sql_conn_id, table_name, written)
        self._lineage_run = LineageRun(
            endpoint_dataset(hook.settings.base_url, self.endpoint.path), destination, sink.columns, rows
        )

    def destination_asset(self) -> Dataset | None:
        """The asset ``emit_asset`` attaches to the alias: after a run, what the run wrote (the table as
        its database resolved it, a folder ``output_path``'s file of that run); before one, the table or
        the file as given (the table with the database's default schema). None for XCom. A table's
        connection is read now: call it at run time, never in a DAG file."""
        destination = self._lineage_run.destination if self._lineage_run is not None else self._destination()
        return Dataset(destination.uri) if destination is not None else None

    def _destination(self) -> LineageDataset | None:
        from airflow_provider_patsnap.lineage import destination_dataset, written_file_name

        written = written_file_name(self.output_path) if self.output_path else None
        return destination_dataset(self.sql_conn_id, self.destination_table, written)

    def _attach_asset(self, context: Context, rows: int) -> None:
        """Tell Airflow which asset the alias stands for this time: the rows are in, the asset event
        follows when the task succeeds (nothing is attached when it fails)."""
        events = context.get("outlet_events")
        destination = self._lineage_run.destination if self._lineage_run is not None else None
        if self.asset_alias is None or destination is None or events is None:
            return  # no emit_asset, or not run by Airflow's task runner (a direct execute())
        if not asset_alias_known(self.asset_alias.name):
            self.log.warning(
                "Asset alias %s is not in Airflow's metadata database (this DAG was never parsed into it, "
                "as under `airflow dags test` before `airflow dags reserialize`): no asset event for %s",
                self.asset_alias.name,
                destination.uri,
            )
            return
        # Plain values only: Airflow 2.11 hashes every value of an event's extra.
        extra: dict[str, Any] = {"endpoint": self.endpoint.code, "rows": rows}
        events[self.asset_alias].add(Dataset(destination.uri), extra=extra)
        self.log.info("Asset alias %s: attached %s", self.asset_alias.name, destination.uri)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The PatSnap endpoint read, the table or file written (schema, row count): docs/lineage.md."""
        from airflow_provider_patsnap.lineage import operator_lineage

        return operator_lineage(self._lineage_run)

    def on_kill(self) -> None:
        """Stop at once: no new call, waits abandoned, calls in flight cut; what was written stays."""
        if self._hook is not None:
            self._hook.cancel()

    def _outcome_failure(
        self, totals: RunTotals, requested: int, sink: Sink, result: dict[str, Any]
    ) -> Exception | None:
        """The error a run that landed its rows still fails with, or None: the rows are kept first (the
        file published, the run recorded), then the task fails."""
        totals.log_findings(self.log, self.endpoint, sink)
        if totals.shape_rejects:  # whatever max_rejects says: the mapping must learn this shape
            return totals.unknown_shape_error(self.endpoint, sink)
        if totals.not_fetched:
            resume = (
                "a rerun skips what was fetched (refresh_after)"
                if self.refresh_after
                else "set refresh_after so a rerun skips what was fetched"
            )
            return PatsnapBudgetError(
                f"max_billed_units={self.max_billed_units} reached: {totals.billed} unit(s) billed"
                f"{_lost_answers(totals.meter.unknown)}; the next call could go past it, so "
                f"{totals.not_fetched} of {requested} patent(s) were not requested. "
                f"Everything fetched was written to {sink.location}; {resume}",
                not_fetched=totals.not_fetched,
                summary=result,
            )
        if totals.rejects > self.max_rejects:
            return totals.too_many_rejects_error(self.endpoint, sink, self.max_rejects)
        if totals.missing and self.fail_on_missing:
            return PatsnapInputError(
                f"{totals.missing} of {requested} patent(s) had no {self.endpoint.code} data "
                f"(fail_on_missing=True); rows for the others were written to {sink.location}. "
                f"First missing: {totals.missing_shown}"
            )
        return None


#: The XCom key of the rows a failed task fetched before it failed, when its destination is XCom.
PAID_ROWS_KEY = "rows"


def keep_paid_rows(context: Context, sink: XComSink, log: Any) -> None:
    """A task whose rows go to XCom failed after rows came back (a budget stop, too many rejects, a
    fatal vendor error): the rows paid for are pushed under :data:`PAID_ROWS_KEY` before the failure is
    raised, so a downstream task (``trigger_rule="all_done"``) or the UI can still have them."""
    ti = context.get("ti")
    if not sink.rows or ti is None:
        return
    ti.xcom_push(key=PAID_ROWS_KEY, value=sink.rows)
    log.warning(
        "The task failed after %d row(s) came back: they are in XCom under the key %r "
        "(ti.xcom_pull(task_ids=%r, key=%r))",
        len(sink.rows),
        PAID_ROWS_KEY,
        ti.task_id,
        PAID_ROWS_KEY,
    )


def _shown(value: Any) -> Any:
    """A destination as a message may quote it: a URL without its credentials."""
    from airflow_provider_patsnap.lineage import public_url

    return public_url(value) if isinstance(value, str) else value


def _as_text(output_path: Any) -> Any:
    """``output_path`` as text: an ObjectStoragePath keeps its connection id in it (``s3://conn@bucket/key``)."""
    return str(output_path) if isinstance(output_path, ObjectStoragePath) else output_path


def _lost_answers(units: int) -> str:
    return f" (and up to {units} more for answers lost after sending)" if units else ""
