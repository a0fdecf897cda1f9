"""The only module that knows Airflow 2.11 from Airflow 3.x.

Airflow 3 moved the authoring API to ``airflow.sdk``; 2.11 keeps it under ``airflow.models`` and friends.
Everything else in the provider imports these names from here.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from airflow import __version__ as AIRFLOW_VERSION

AIRFLOW_V_3 = int(AIRFLOW_VERSION.split(".")[0]) >= 3

if TYPE_CHECKING or AIRFLOW_V_3:
    from airflow.sdk import Asset as Dataset
    from airflow.sdk import AssetAlias as DatasetAlias
    from airflow.sdk import (
        BaseOperator,
        BaseOperatorLink,
        BaseSensorOperator,
        Context,
        ObjectStoragePath,
    )

    try:
        from airflow.sdk import BaseHook
    except ImportError:  # Airflow 3.0: the SDK has no BaseHook yet (3.1 added it and deprecated this one)
        from airflow.hooks.base import BaseHook  # type: ignore[no-redef,attr-defined]

    try:
        from airflow.sdk.exceptions import AirflowSensorTimeout
    except ImportError:  # Airflow 3.0-3.2 kept it in core
        from airflow.exceptions import AirflowSensorTimeout  # type: ignore[no-redef]
else:  # pragma: no cover - exercised by the Airflow 2.11 CI leg
    from airflow.datasets import Dataset, DatasetAlias
    from airflow.exceptions import AirflowSensorTimeout
    from airflow.hooks.base import BaseHook
    from airflow.io.path import ObjectStoragePath
    from airflow.models import BaseOperator
    from airflow.models.baseoperatorlink import BaseOperatorLink
    from airflow.sensors.base import BaseSensorOperator
    from airflow.utils.context import Context

try:
    from airflow.sdk.exceptions import AirflowFailException
except ImportError:  # Airflow 2.11
    from airflow.exceptions import AirflowFailException  # type: ignore[no-redef]

try:  # AIP-105: Airflow 3.3 asks a task's retry_policy after each failure
    from airflow.sdk import RetryPolicy

    HAS_RETRY_POLICY = True
except ImportError:  # Airflow 2.11-3.2: BaseOperator rejects a retry_policy argument

    class RetryPolicy:  # type: ignore[no-redef]
        """Stands in for ``airflow.sdk.RetryPolicy`` before 3.3, so a policy class can be defined (and
        its decisions asked for) on every line; :func:`retry_policy_kwargs` never hands it to Airflow."""

    HAS_RETRY_POLICY = False


def retry_policy_kwargs(retry_policy: Any) -> dict[str, Any]:
    """``BaseOperator``'s ``retry_policy`` argument where Airflow has one (3.3+), else nothing: 2.11-3.2
    reject the argument, and their ``AirflowFailException`` already fails without a retry. There only
    this provider's own policy, or None, is accepted (and has no effect)."""
    if HAS_RETRY_POLICY:
        return {"retry_policy": retry_policy}
    from airflow_provider_patsnap.retry import PatsnapRetryPolicy

    if retry_policy is not None and not isinstance(retry_policy, PatsnapRetryPolicy):
        raise ValueError(
            f"retry_policy needs Airflow 3.3 or later (this is Airflow {AIRFLOW_VERSION}): got {retry_policy!r}"
        )
    return {}


def mask_secret(value: str | None) -> None:
    """Register ``value`` with Airflow's log masker (the import moved in Airflow 3)."""
    if not value:
        return
    try:
        from airflow.sdk.log import mask_secret as _mask
    except ImportError:
        from airflow.utils.log.secrets_masker import mask_secret as _mask  # type: ignore[no-redef]
    _mask(value)


def asset_alias_known(name: str) -> bool:
    """Whether an outlet alias can take an asset event. Airflow 3 registers whatever it needs; Airflow
    2.11 fails the task's whole dataset registration (``FlushError``, after the task succeeded) for an
    alias its metadata DB does not know, which happens only when the DAG was never parsed into it:
    ``airflow dags test`` before any scheduler or ``dags reserialize`` saw the file."""
    if AIRFLOW_V_3:
        return True
    try:
        from airflow.models.dataset import DatasetAliasModel
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            found = session.scalar(
                select(DatasetAliasModel.id).where(DatasetAliasModel.name == name).limit(1)
            )
    except Exception:  # no database access from here (2.11's database isolation): let Airflow decide
        return True
    return found is not None


def _conf() -> Any:
    try:
        from airflow.sdk.configuration import conf
    except ImportError:
        from airflow.configuration import conf
    return conf


def conf_getboolean(section: str, key: str, fallback: bool) -> bool:
    return bool(_conf().getboolean(section, key, fallback=fallback))


def conf_get(section: str, key: str, fallback: str) -> str:
    return str(_conf().get(section, key, fallback=fallback))


class VariableTaskState:
    """What Airflow 3.3's ``task_state_store`` gives, for older lines: values that survive a retry.

    XCom cannot do this (Airflow clears a task's XComs at the start of every try), so each value is an
    Airflow Variable named after the task instance; :meth:`delete` removes it once the task is done.
    """

    def __init__(self, ti: Any) -> None:
        # Variable keys are limited to 250 characters; dag, run and task ids together can exceed that.
        instance = f"{ti.dag_id}\x1f{ti.run_id}\x1f{ti.task_id}\x1f{getattr(ti, 'map_index', -1)}"
        self._prefix = f"patsnap_task_state:{hashlib.sha1(instance.encode()).hexdigest()}"

    @staticmethod
    def _variable() -> Any:
        try:
            from airflow.sdk import Variable
        except ImportError:
            from airflow.models import Variable
        return Variable

    def get(self, key: str, default: Any = None) -> Any:
        name = f"{self._prefix}:{key}"
        if AIRFLOW_V_3:
            return self._variable().get(name, default=default)
        return self._variable().get(name, default_var=default)

    def set(self, key: str, value: Any) -> None:
        self._variable().set(f"{self._prefix}:{key}", value)

    def delete(self, key: str) -> None:
        self._variable().delete(f"{self._prefix}:{key}")


def pool_slots(name: str) -> int | None:
    """The slots of the Airflow pool ``name``, or None where a task cannot know them: Airflow 3's tasks
    have no metadata database (and no pool API); Airflow 2.11's read the pool."""
    if AIRFLOW_V_3:
        return None
    from airflow.models.pool import Pool

    try:
        pool = Pool.get_pool(name)
    except Exception:  # no metadata database reachable (a test calling execute directly): unknown
        return None
    return int(pool.slots) if pool is not None and pool.slots is not None and pool.slots >= 0 else None


def task_state(context: Any) -> Any:
    """Values of this task instance that survive its retries and reschedules: Airflow 3.3's
    ``task_state_store``, else a :class:`VariableTaskState` (``get``, ``set``, ``delete`` either way)."""
    return context.get("task_state_store") or VariableTaskState(context["ti"])


try:  # AIP-103: submit an external job once, reconnect to it on a retry (Airflow 3.3)
    from airflow.sdk import ResumableJobMixin

    HAS_RESUMABLE_JOBS = True
except ImportError:  # Airflow 2.11-3.2
    HAS_RESUMABLE_JOBS = False

    class ResumableJobMixin:  # type: ignore[no-redef]
        """Airflow 3.3's ``ResumableJobMixin`` for older lines: the same contract and the same decisions,
        with this provider's :func:`task_state` (a :class:`VariableTaskState`) where 3.3 has the task
        state store. (common.compat's stand-in always submits afresh: a retry would pay again.)

        ``durable=False``: submit, poll, result, with nothing read or kept. Otherwise a stored id whose
        job is active is reconnected to (``poll_until_complete``; nothing returned), one whose job
        succeeded gives ``get_job_result`` at once, and any other (or none) submits a job, stores its id
        before polling, polls and returns ``get_job_result``.
        """

        external_id_key: str = "remote_job_id"

        def __init__(self, *, durable: bool = True, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.durable = durable

        def execute_resumable(self, context: Any) -> Any:
            if not self.durable:
                external_id = self.submit_job(context)
                self.poll_until_complete(external_id, context)
                return self.get_job_result(external_id, context)
            store = task_state(context)
            external_id = store.get(self.external_id_key)
            if external_id:
                status = self.get_job_status(external_id, context)
                if self.is_job_active(status):
                    return self.poll_until_complete(external_id, context)
                if self.is_job_succeeded(status):
                    return self.get_job_result(external_id, context)
            external_id = self.submit_job(context)
            if external_id is not None:
                store.set(self.external_id_key, external_id)
            self.poll_until_complete(external_id, context)
            return self.get_job_result(external_id, context)

        def submit_job(self, context: Any) -> Any:
            raise NotImplementedError

        def get_job_status(self, external_id: Any, context: Any) -> str:
            raise NotImplementedError

        def is_job_active(self, status: str) -> bool:
            raise NotImplementedError

        def is_job_succeeded(self, status: str) -> bool:
            raise NotImplementedError

        def poll_until_complete(self, external_id: Any, context: Any) -> None:
            raise NotImplementedError

        def get_job_result(self, external_id: Any, context: Any) -> Any:
            raise NotImplementedError


__all__ = [
    "AIRFLOW_V_3",
    "HAS_RESUMABLE_JOBS",
    "HAS_RETRY_POLICY",
    "AirflowFailException",
    "AirflowSensorTimeout",
    "BaseHook",
    "BaseOperator",
    "BaseOperatorLink",
    "BaseSensorOperator",
    "Context",
    "Dataset",
    "DatasetAlias",
    "ObjectStoragePath",
    "ResumableJobMixin",
    "RetryPolicy",
    "VariableTaskState",
    "asset_alias_known",
    "conf_get",
    "conf_getboolean",
    "mask_secret",
    "pool_slots",
    "retry_policy_kwargs",
    "task_state",
]
