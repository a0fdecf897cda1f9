"""The only module that knows Airflow 2.11 from Airflow 3.x.

Airflow 3 moved the authoring API to ``airflow.sdk``; 2.11 keeps it under ``airflow.models`` and friends.
Everything else in the provider imports these names from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow import __version__ as AIRFLOW_VERSION

AIRFLOW_V_3 = int(AIRFLOW_VERSION.split(".")[0]) >= 3
_major, _minor = (int(part) for part in AIRFLOW_VERSION.split(".")[:2])
AIRFLOW_V_3_3_PLUS = (_major, _minor) >= (3, 3)

if TYPE_CHECKING or AIRFLOW_V_3:
    from airflow.sdk import Asset as Dataset
    from airflow.sdk import (
        BaseHook,
        BaseOperator,
        BaseOperatorLink,
        BaseSensorOperator,
        Context,
        ObjectStoragePath,
    )
    from airflow.sdk.exceptions import AirflowSensorTimeout
    from airflow.sdk.execution_time.xcom import XCom
else:  # pragma: no cover - exercised by the Airflow 2.11 CI leg
    from airflow.datasets import Dataset
    from airflow.exceptions import AirflowSensorTimeout
    from airflow.hooks.base import BaseHook
    from airflow.io.path import ObjectStoragePath
    from airflow.models import BaseOperator, BaseOperatorLink
    from airflow.models.xcom import XCom
    from airflow.sensors.base import BaseSensorOperator
    from airflow.utils.context import Context

try:
    from airflow.sdk.exceptions import AirflowFailException
except ImportError:  # Airflow 2.11
    from airflow.exceptions import AirflowFailException  # type: ignore[no-redef]

try:
    from airflow.sdk.bases.resumablejobmixin import ResumableJobMixin
except ImportError:  # Airflow < 3.3
    ResumableJobMixin = None  # type: ignore[assignment,misc]


def mask_secret(value: str | None) -> None:
    """Register ``value`` with Airflow's log masker (the import moved in Airflow 3)."""
    if not value:
        return
    try:
        from airflow.sdk.log import mask_secret as _mask
    except ImportError:
        from airflow.utils.log.secrets_masker import mask_secret as _mask  # type: ignore[no-redef]
    _mask(value)


def conf_getboolean(section: str, key: str, fallback: bool) -> bool:
    try:
        from airflow.sdk.configuration import conf
    except ImportError:
        from airflow.configuration import conf
    return conf.getboolean(section, key, fallback=fallback)


def xcom_pull_own(context: Any, key: str) -> Any:
    """Pull a value this very task pushed under ``key`` earlier in the same run."""
    ti = context["ti"]
    return ti.xcom_pull(task_ids=ti.task_id, key=key, map_indexes=getattr(ti, "map_index", -1))


__all__ = [
    "AIRFLOW_V_3",
    "AIRFLOW_V_3_3_PLUS",
    "AirflowFailException",
    "AirflowSensorTimeout",
    "BaseHook",
    "BaseOperator",
    "BaseOperatorLink",
    "BaseSensorOperator",
    "Context",
    "Dataset",
    "ObjectStoragePath",
    "ResumableJobMixin",
    "XCom",
    "conf_getboolean",
    "mask_secret",
]
