"""PatsnapHook: the PatSnap Open API's methods. The wire under them is :mod:`._transport`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any

from airflow_provider_patsnap._compat import BaseHook
from airflow_provider_patsnap.arguments import number, whole_number
from airflow_provider_patsnap.connection import (
    CONNECTION_TYPE,
    DEFAULT_CONN_ID,
    NUMERIC_EXTRAS,
    UI_FIELD_BEHAVIOUR,
    ConnectionSettings,
    InvalidSettings,
    concurrency_shortfall,
    connection_form_widgets,
    parse_connection,
)
from airflow_provider_patsnap.endpoints import AWARD, MAX_BATCH, Endpoint, IdKind
from airflow_provider_patsnap.exceptions import (
    PatsnapAuthError,
    PatsnapBudgetError,
    PatsnapConnectionError,
    PatsnapError,
    PatsnapFailFastError,
    PatsnapInputError,
    PatsnapTransientError,
)
from airflow_provider_patsnap.hooks._billing import BillingMeter, MeteredCall
from airflow_provider_patsnap.hooks._pipeline import PipelineStopped, paced_map
from airflow_provider_patsnap.hooks._shared import Cancellation
from airflow_provider_patsnap.ids import BatchResult, PatentIds, match_patents
from airflow_provider_patsnap.observability import REPORT_CREATED, REPORT_WAIT_DURATION, Metrics
from airflow_provider_patsnap.report import (
    CREATE_PATH,
    STATUS_PATH,
    JobId,
    JobState,
    check_wait,
    create_body,
    created_job_id,
    poll_until_finished,
)

# The HTTP stack (requests, tenacity) is imported when a hook first calls, not by a DAG file.
if TYPE_CHECKING:
    from airflow_provider_patsnap.hooks._transport import CallStats, Transport


class PatsnapHook(BaseHook):
    """
    Interact with the PatSnap Open API.

    Credentials come from an Airflow connection of type ``patsnap``: host = base URL (default
    ``https://connect.patsnap.com``), login = client id and password = client secret, or password =
    an ``sk-`` API key. Extras: ``qps``, ``timeout``, ``max_retries``, ``verify``, ``proxies``,
    ``concurrency``, ``allow_private_downloads``, ``rate_limit_redis_conn_id``.

    :param patsnap_conn_id: The Airflow connection id.
    :param qps: Overrides the connection's ``qps`` (requests per second) for this hook.
    :param timeout: Overrides the connection's timeout: seconds one call may take in all.
    :param max_retries: Overrides the connection's number of retries of a transient failure.
    :param concurrency: Overrides the number of batches in flight at once in :meth:`lookup`.
    """

    conn_name_attr = "patsnap_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONNECTION_TYPE
    hook_name = "PatSnap"

    def __init__(
        self,
        patsnap_conn_id: str = default_conn_name,
        *,
        qps: float | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        concurrency: int | None = None,
    ) -> None:
        super().__init__()
        self.patsnap_conn_id = patsnap_conn_id
        self._overrides = dict(qps=qps, timeout=timeout, max_retries=max_retries, concurrency=concurrency)
        for name, value in self._overrides.items():
            if value is not None:  # None: the connection's own value
                kind, lowest, highest = NUMERIC_EXTRAS[name]
                if kind is int:
                    whole_number(name, value, minimum=int(lowest), maximum=int(highest))
                else:
                    number(name, value, minimum=lowest, maximum=highest)
        # Exists before the transport: a cancel while get_connection is slow (a secrets backend) still
        # stops the call that was waiting for it.
        self._cancellation = Cancellation()
        #: Sends this hook's metrics (observability.py); a task adds its dag_id and task_id tags.
        self.metrics = Metrics()

    # --- connection form (Airflow 2.11-3.1; 3.2+ reads get_provider_info) ---------------------------

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return UI_FIELD_BEHAVIOUR

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        return connection_form_widgets()

    # --- state ---------------------------------------------------------------------------------------

    @cached_property
    def settings(self) -> ConnectionSettings:
        try:
            return parse_connection(self.get_connection(self.patsnap_conn_id), self._overrides)
        except InvalidSettings as err:
            raise PatsnapConnectionError(str(err)) from None

    @cached_property
    def connection_qps(self) -> float:
        """The connection's own ``qps`` (the vendor's QPS for this client), whatever this hook overrides."""
        if self._overrides.get("qps") is None:
            return self.settings.qps
        try:
            return parse_connection(self.get_connection(self.patsnap_conn_id)).qps
        except InvalidSettings as err:
            raise PatsnapConnectionError(str(err)) from None

    @cached_property
    def transport(self) -> Transport:
        from airflow_provider_patsnap.hooks._transport import Transport

        transport = Transport(self.settings, self.log, self.metrics)
        # The transport reads its cancellation at call time: the hook's one replaces the one it made.
        self._cancellation.clock = transport.clock
        transport.cancellation = self._cancellation
        return transport

    @property
    def stats(self) -> CallStats:
        return self.transport.stats

    def get_conn(self) -> Any:
        return self.transport.session

    def scrub(self, text: str) -> str:
        """``text`` without any credential of this connection."""
        return self.transport.scrubber(text)

    def cancel(self) -> None:
        """Stop: no new call starts, backoff and rate-limit waits end at once (from ``on_kill``), also
        when the connection is still being read."""
        self._cancellation.cancel()

    @property
    def cancelled(self) -> bool:
        return self._cancellation.cancelled

    def close(self) -> None:
        """Close the pooled connections (a long-lived process such as the triggerer should)."""
        if "transport" in self.__dict__:
            self.__dict__.pop("transport").close()

    # --- calls ---------------------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Mapping[str, Any] | None = None,
        description: str | None = None,
        idempotent: bool = True,
        before_send: Callable[[], None] | None = None,
        endpoint: str = "",
    ) -> Any:
        """Make one API call and return the envelope's ``data``, or raise a typed :class:`PatsnapError`.

        Transient failures are retried with jittered exponential backoff (``Retry-After`` preferred).
        A call that is not idempotent (creating a paid report) is retried only on a rate-limit answer,
        which PatSnap gives before doing any work.

        :param method: HTTP method.
        :param path: Path under the base URL, for example ``/advanced-patent-data/legal-data``.
        :param params: Query parameters; ``apikey`` is added.
        :param json_body: JSON body for a POST.
        :param description: Words for error messages and logs; defaults to ``METHOD path``.
        :param idempotent: Whether a call whose outcome is unknown may be repeated.
        :param before_send: Called when only sending is left (the token fetched, the rate-limit slot
            reached), before each attempt goes out: a failure before it reached nothing at PatSnap.
        :param endpoint: The API's code (``P026``, ``R002``): the ``endpoint`` tag of the call's metrics.
        """
        self._cancellation.check()  # before the connection is read: a stopped task reads nothing more
        extra: dict[str, Any] = {"params": dict(params or {})}
        if json_body is not None:
            extra["json"] = dict(json_body)
        return self.transport.call(
            method,
            path,
            description or f"{method} {path}",
            idempotent=idempotent,
            before_send=before_send,
            endpoint=endpoint,
            **extra,
        )

    # --- data endpoints ------------------------------------------------------------------------------

    def fetch_batch(
        self,
        endpoint: Endpoint,
        ids: Iterable[str] | str,
        id_kind: IdKind,
        params: Mapping[str, Any] | None = None,
        *,
        meter: BillingMeter | None = None,
    ) -> BatchResult:
        """Fetch one batch of at most 100 ids from a data endpoint (validated first).

        ``meter``: the call reserves the batch's units there just before it is sent (refused with
        :class:`~airflow_provider_patsnap.exceptions.PatsnapBudgetError` past its budget), and what the
        answer billed, or may have billed, is counted.
        """
        batch = PatentIds.of(ids, id_kind)
        if len(batch) > MAX_BATCH:
            raise PatsnapInputError(f"a batch takes at most {MAX_BATCH} ids, got {len(batch)}")
        return self._fetch(endpoint, batch, id_kind, params, meter, slot_taken=False)

    def _fetch(
        self,
        endpoint: Endpoint,
        batch: PatentIds,
        id_kind: IdKind,
        params: Mapping[str, Any] | None,
        meter: BillingMeter | None,
        slot_taken: bool,
    ) -> BatchResult:
        """One call for ``batch``; ``slot_taken``: its first attempt's rate-limit slot was waited for."""
        ids = batch.ids
        metered = MeteredCall(meter, len(ids)) if meter is not None else None
        data = self.transport.call(
            endpoint.method,
            endpoint.path,
            f"{endpoint.code} {endpoint.title} for {len(ids)} {id_kind}(s) starting {ids[0]!r}",
            params={**(params or {}), id_kind: ",".join(ids)},
            slot_taken=slot_taken,
            endpoint=endpoint.code,
            before_send=metered.sending if metered else None,
            after_failure=metered.failed if metered else None,
        )
        if not isinstance(data, list | None) or not all(isinstance(item, dict) for item in data or ()):
            if metered:
                metered.answer_unreadable()
            raise PatsnapFailFastError(
                f"PatSnap {endpoint.code} returned data of an unexpected shape for ids starting "
                f"{ids[0]!r}: {self.scrub(str(data))[:200]}"
            )
        patents: list[Any] = data or []
        if metered:
            metered.answered(len(patents))
        return BatchResult(batch, patents, match_patents(batch, patents, id_kind))

    def lookup(
        self,
        endpoint: Endpoint,
        ids: Iterable[str] | str,
        id_kind: IdKind = "patent_number",
        *,
        params: Mapping[str, Any] | None = None,
        batch_size: int = MAX_BATCH,
        meter: BillingMeter | None = None,
    ) -> Iterator[BatchResult]:
        """Fetch any number of ids in batches of at most 100, concurrently within the rate limit.

        The ids are validated and de-duplicated first (a bad one raises before any call). Up to the
        connection's ``concurrency`` calls are in flight, each started at its rate-limit slot. Results
        are yielded as batches complete; no new call starts while 32 results wait for the caller, so
        memory stays flat. If a batch fails for good, or :meth:`cancel` is called, the batches already
        in flight are still yielded, no new ones start, and the error is raised naming how many ids were
        not fetched.

        :param endpoint: An entry of :data:`~airflow_provider_patsnap.endpoints.ENDPOINTS`.
        :param ids: Patent ids or numbers, as a list or a comma-separated string.
        :param id_kind: ``patent_number`` or ``patent_id``.
        :param params: Extra query parameters of the endpoint (P022's ``lang``).
        :param batch_size: Ids per call, 1 to 100.
        :param meter: Counts what the calls billed (and may have billed), and stops before a call that
            could pass its budget (see :meth:`fetch_batch`).
        """
        batches = PatentIds.of(ids, id_kind).batches(batch_size)  # a bad id or size raises now
        groups = self.stream_batches(endpoint, batches, id_kind, params=params, meter=meter, max_group=1)
        return (result for group in groups for result in group)

    def stream_batches(
        self,
        endpoint: Endpoint,
        batches: Iterable[PatentIds],
        id_kind: IdKind = "patent_number",
        *,
        params: Mapping[str, Any] | None = None,
        meter: BillingMeter | None = None,
        max_group: int = 16,
    ) -> Iterator[list[BatchResult]]:
        """:meth:`lookup` for batches already validated (:class:`~airflow_provider_patsnap.ids.PatentIds`,
        at most 100 ids each), taken from ``batches`` only as calls can start; yields groups: every batch
        that completed while the caller handled the previous group, at most ``max_group``. A caller that
        writes a group in one transaction writes larger ones exactly when the destination is the
        bottleneck, and never waits for a batch. ``max_group`` is checked now, before anything is taken."""
        whole_number("max_group", max_group, minimum=1)
        return self._stream(endpoint, batches, id_kind, params, meter, max_group)

    def _stream(
        self,
        endpoint: Endpoint,
        batches: Iterable[PatentIds],
        id_kind: IdKind,
        params: Mapping[str, Any] | None,
        meter: BillingMeter | None,
        max_group: int,
    ) -> Iterator[list[BatchResult]]:
        transport = self.transport  # created here, not racing in the worker threads
        shortfall = concurrency_shortfall(self.settings)
        if shortfall:
            self.log.warning("%s", shortfall)
        try:
            # The token before the first slot: every call whose slot came while the token was being
            # fetched would otherwise wait for it and reach PatSnap with the others, all at once.
            transport.auth.bearer()
        except PatsnapError:
            pass  # the first call meets the same failure (the token cache keeps it) and reports it
        delivered = 0

        def fetch(batch: PatentIds) -> BatchResult:
            return self._fetch(endpoint, batch, id_kind, params, meter, slot_taken=True)

        def stopped(stop: PipelineStopped) -> None:
            note = (
                f"{stop.not_fetched} of {delivered + stop.not_fetched} id(s) were not fetched; the batches "
                "fetched before were handed to the caller, and a rerun is safe (writes are idempotent)"
            )
            if isinstance(stop.error, PatsnapBudgetError):
                budget = PatsnapBudgetError(str(stop.error), not_fetched=stop.not_fetched)
                budget.add_note(note)
                raise budget from None
            stop.error.add_note(note)
            raise stop.error

        for group in paced_map(
            iter(batches),
            fetch,
            concurrency=self.settings.concurrency,
            reserve_slot=transport.rate_limiter.reserve,
            clock=transport.clock,
            cancellation=transport.cancellation,
            name=f"patsnap-{endpoint.code}-",
            on_stop=stopped,
            group_size=max_group,
            late_slot=transport.rate_limiter.late_slot,
        ):
            delivered += sum(len(result.requested) for result in group)
            yield group

    # --- value report (R002) -------------------------------------------------------------------------

    def create_value_report(
        self,
        *,
        patent_id: str | None = None,
        patent_number: str | None = None,
        report_type: str = "pdf",
        before_send: Callable[[], None] | None = None,
    ) -> JobId:
        """Create a patent value report job (paid) and return its ``job_id`` as exact text.

        ``before_send`` is called when only sending the create is left (the token fetched, the
        rate-limit slot waited for): a failure before it reached nothing at PatSnap.
        """
        data = self.call(
            "POST",
            CREATE_PATH,
            json_body=create_body(patent_number, patent_id, report_type),
            description=f"R002 report creation for {patent_id or patent_number}",
            idempotent=False,
            before_send=before_send,
            endpoint="R002",
        )
        job_id = created_job_id(data, self.scrub)
        self.metrics.incr(REPORT_CREATED, endpoint="R002")
        return job_id

    def get_report_state(self, job_id: str) -> JobState:
        """The job's state, checked: about this job, with a status PatSnap documents."""
        asked_for = JobId.parse(job_id)
        data = self.call(
            "GET",
            STATUS_PATH,
            params={"job_id": asked_for},
            description=f"R002 status of job {asked_for}",
            endpoint="R002",
        )
        return JobState.from_api(data, asked_for, self.scrub)

    def get_report_status(self, job_id: str) -> dict[str, Any]:
        """:meth:`get_report_state` as a dict: ``job_id`` (text), ``job_status`` (int), ``queue_num``,
        ``download_url``, ``abnormal_cause``."""
        return self.get_report_state(job_id).as_payload(with_link=True)

    def wait_for_report(
        self, job_id: str, *, poll_interval: float, timeout: float, tolerated_errors: int = 3
    ) -> JobState:
        """Poll on this thread until the job is done (return its state) or failed (raise); raise
        :class:`AirflowSensorTimeout` when ``timeout`` seconds pass first (after one last check)."""
        check_wait(poll_interval=poll_interval, timeout=timeout, tolerated_errors=tolerated_errors)
        cancellation = self.transport.cancellation  # the transport first: its clock times the waits
        started = time.monotonic()
        state = poll_until_finished(
            self.get_report_state,
            JobId.parse(job_id),
            poll_interval=poll_interval,
            timeout=timeout,
            tolerated_errors=tolerated_errors,
            monotonic=cancellation.clock.monotonic,
            sleep=cancellation.sleep,
            log=self.log,
        )
        self.metrics.timing(REPORT_WAIT_DURATION, time.monotonic() - started, endpoint="R002")
        return state

    def download(self, url: str, target: IO[bytes], chunk_size: int = 1 << 16) -> tuple[int, int | None]:
        """Stream a presigned report link into ``target``; return (bytes written, Content-Length).

        The link lives on another host: no PatSnap credential travels there, and each chunk must arrive
        within the connection's timeout.
        """
        from airflow_provider_patsnap.hooks._download import stream_download

        whole_number("chunk_size", chunk_size, minimum=1)
        return stream_download(self.transport, url, target, chunk_size)

    # --- connection test -----------------------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        """Check the credentials: fetch a token, or make one free call with an sk- API key."""
        from airflow_provider_patsnap.lineage import public_url

        try:
            settings = self.settings
        except PatsnapError as err:
            return False, str(err)
        base_url = public_url(settings.base_url)  # what the UI and the CLI print: no user info
        try:
            if settings.api_key:
                self.call("GET", AWARD.path, params={"patent_number": "TEST0000000"}, endpoint=AWARD.code)
                return True, f"API key accepted by {base_url}"
            self.transport.fetch_token()
            return True, f"Token issued by {base_url}"
        except PatsnapAuthError as err:
            return False, str(err)
        except PatsnapError as err:
            if settings.api_key and not isinstance(err, PatsnapTransientError):
                return True, f"API key accepted by {base_url} ({err})"
            return False, str(err)
        except Exception as err:
            return False, self.scrub(f"{type(err).__name__}: {err}")
