"""Operators that enrich a list of patents with PatSnap data and land one flat row per record.

Each data operator is a few lines over :class:`PatsnapBatchOperator`: the endpoint entry of
:data:`~airflow_provider_patsnap.endpoints.ENDPOINTS` says where the data lives and what the rows look
like; the base class (:mod:`._batch`) validates the input, skips patents fetched recently, fetches in
batches of 100 within the connection's QPS and a budget, and writes each batch as it arrives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_patsnap.endpoints import ENDPOINTS
from airflow_provider_patsnap.operators._batch import PatsnapBatchOperator
from airflow_provider_patsnap.operators._inputs import is_literal

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ loads them when asked for
    from airflow_provider_patsnap.operators.report import (
        PatsnapCreateValueReportOperator,
        PatsnapDownloadReportOperator,
    )

__all__ = [
    "PatsnapAwardOperator",
    "PatsnapBatchOperator",
    "PatsnapCreateValueReportOperator",
    "PatsnapCustomsRecordOperator",
    "PatsnapDownloadReportOperator",
    "PatsnapLegalInformationOperator",
    "PatsnapSeicClassificationOperator",
]


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
        if (is_literal(self.lang) or not literal_only) and self.lang not in allowed:
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


def __dir__() -> list[str]:
    return sorted({*globals(), *_REPORT_NAMES})
