"""The "PatSnap report" extra link, shared by the report operators and the sensor."""

from __future__ import annotations

from typing import Any

from airflow_provider_patsnap._compat import AIRFLOW_V_3, BaseOperatorLink, Context, XCom
from airflow_provider_patsnap.report import JobState

DOWNLOAD_URL_KEY = "download_url"


class PatsnapReportJobLink(BaseOperatorLink):
    """Opens the finished report: the presigned download link the task saw (valid for 7 days)."""

    name = "PatSnap report"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        if AIRFLOW_V_3:  # evaluated on the worker as the task ends, by the operator that ran
            return getattr(operator, DOWNLOAD_URL_KEY, None) or ""
        return XCom.get_value(key=DOWNLOAD_URL_KEY, ti_key=ti_key) or ""


def keep_download_url(task: Any, context: Context, state: JobState) -> None:
    """Keep the finished job's download link on the task and in XCom, for :class:`PatsnapReportJobLink`."""
    if not state.download_url:
        return
    setattr(task, DOWNLOAD_URL_KEY, state.download_url)
    ti = context.get("ti")
    if ti is not None:
        ti.xcom_push(key=DOWNLOAD_URL_KEY, value=state.download_url)
