"""The sandbox's synthetic data, report files and CLI settings: pure functions, no sockets."""

from __future__ import annotations

import hashlib
import json
import re
import uuid

import pytest

from airflow_provider_patsnap.sandbox import SandboxConfig
from airflow_provider_patsnap.sandbox.__main__ import config_from_args, connection_extra
from airflow_provider_patsnap.sandbox.data import (
    ENDPOINT_CODES,
    LANGS,
    PATENT_ID_NAMESPACE,
    cached_patent_object,
    number_for_patent_id,
    patent_id_for_number,
    patent_object,
    resolve,
)
from airflow_provider_patsnap.sandbox.reports import report_bytes


def test_same_patent_same_records_by_number_or_id() -> None:
    for n in range(40):
        pn = f"CN{108977400 + n}B"
        patent_id = patent_id_for_number(pn)
        assert resolve("patent_number", pn) == (pn, patent_id)
        for code in ENDPOINT_CODES:
            by_number = patent_object(code, "patent_number", pn)
            by_id = patent_object(code, "patent_id", patent_id)
            assert (by_number is None) == (by_id is None)
            if by_number and by_id and by_id["pn"].startswith("CN"):
                assert {**by_id, "pn": pn} == by_number


def test_synthetic_data_is_unchanged() -> None:
    # The digest of these objects as the sandbox generated them before its draws and ids were made
    # faster: the data must not change with how it is computed (tests and users compute expected rows).
    values = [
        f"{p}{110650000 + 7919 * n}{k}"
        for n in range(60)
        for p, k in (("CN", "A"), ("US", "B2"), ("EP", "B1"))
    ]
    values += ["NODATA-CN1B", "nodata1", "x", "CN305123456S", "BR112012345678A2"]
    ids = [patent_id_for_number(value) for value in values[:50]]
    ids += ["1e099a74-4378-4b84-9d13-f1b4ed5cb59b", "not-a-uuid"]
    digest = hashlib.sha256()
    for code in ENDPOINT_CODES:
        for lang in ("en", "cn") if code == "P022" else ("en",):
            for kind, requested in (("patent_number", values), ("patent_id", ids)):
                for value in requested:
                    found = patent_object(code, kind, value, lang)  # type: ignore[arg-type]
                    digest.update(json.dumps(found, ensure_ascii=False, separators=(",", ":")).encode())
                    digest.update(b"\n")
    for value in ids:
        digest.update(number_for_patent_id(value).encode())
    assert digest.hexdigest() == "e94d93de92d8e5c34bc2a9078483aa6650ce0e50700a128dbd29446d7e491c88"


def test_patent_ids_are_uuid5_of_the_number() -> None:
    for value in ("CN110650438A", "US10000001B2", "专利1", ""):
        assert patent_id_for_number(value) == str(uuid.uuid5(PATENT_ID_NAMESPACE, value))


def test_cached_objects_are_the_fresh_ones_and_a_repeat_is_served_from_the_cache() -> None:
    requests = [
        (code, kind, value, lang)
        for code in ENDPOINT_CODES
        for lang in (LANGS if code == "P022" else ("en",))
        for kind, value in (
            *(("patent_number", f"JP{6500000 + 13 * n}B2") for n in range(40)),
            ("patent_number", "NODATA-JP1B2"),
            ("patent_id", patent_id_for_number("JP6500000B2")),
        )
    ]
    first = [cached_patent_object(*request) for request in requests]  # type: ignore[arg-type]
    for request, cached in zip(requests, first, strict=True):
        fresh = patent_object(*request)  # type: ignore[arg-type]
        assert cached == fresh and json.dumps(cached, ensure_ascii=False) == json.dumps(
            fresh, ensure_ascii=False
        )
    hits = cached_patent_object.cache_info().hits
    again = [cached_patent_object(*request) for request in requests]  # type: ignore[arg-type]
    assert all(one is other for one, other in zip(again, first, strict=True))  # not drawn again
    assert cached_patent_object.cache_info().hits == hits + len(requests)
    assert cached_patent_object.cache_info().maxsize  # bounded: a long run does not keep every patent


def test_synthetic_data_distribution_and_types() -> None:
    values = [f"US{10000000 + n}B2" for n in range(600)]
    for code in ENDPOINT_CODES:
        objects = [patent_object(code, "patent_number", value) for value in values]
        missing = sum(obj is None for obj in objects) / len(objects)
        assert 0.05 < missing < 0.16, (code, missing)
    assert patent_object("P026", "patent_number", "NODATA-CN1B") is None
    seic_types = {
        type(entry["seic_lv2"]["seic_no"])
        for value in values[:100]
        if (obj := patent_object("P022", "patent_number", value))
        for entry in obj["seic_classification"]
    }
    assert seic_types == {str, float}
    sessions = {
        type(award["award_session"])
        for value in values[:100]
        if (obj := patent_object("P032", "patent_number", value))
        for award in obj["patent_award_data"]
    }
    assert sessions == {str, int}
    for value in values[:100]:
        legal = patent_object("P026", "patent_number", value)
        if legal:
            assert 1 <= len(legal["patsnap_legal_data"]["inpadoc_legal_data"]) <= 3
            assert 0 <= len(legal["patsnap_legal_data"]["official_legal_data"]) <= 2
    assert re.fullmatch(
        r"[A-Z]{2}\d{7,12}[A-Z]\d?", number_for_patent_id("1e099a74-4378-4b84-9d13-f1b4ed5cb59b")
    )


def test_pdf_report_has_correct_xref_offsets() -> None:
    pdf = report_bytes("1579434053399036001", "CN108977442B", "pdf")
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    xref_at = int(pdf.rsplit(b"startxref", 1)[1].split()[0])
    lines = pdf[xref_at:].split(b"\n")
    assert lines[0] == b"xref"
    count = int(lines[1].split()[1])
    for number, entry in enumerate(lines[3 : 2 + count], start=1):
        offset = int(entry.split()[0])
        assert pdf[offset:].startswith(f"{number} 0 obj".encode())
    assert b"CN108977442B" in pdf and b"1579434053399036001" in pdf
    assert report_bytes("1", "CN1B", "pdf") == report_bytes("1", "CN1B", "pdf")


def test_cli_reads_environment_and_flags_win() -> None:
    environ = {
        "PATSNAP_SANDBOX_FAULT_RATE": "0.25",
        "PATSNAP_SANDBOX_QPS": "9",
        "PATSNAP_SANDBOX_QPS_TOLERANCE": "0.05",
        "PATSNAP_SANDBOX_ERRORS_AS_HTTP_200": "true",
    }
    config = config_from_args(["--qps", "4", "--faults", "busy,drop"], environ)
    assert (config.fault_rate, config.qps, config.faults, config.error_http_status) == (
        0.25,
        4.0,
        ("busy", "drop"),
        False,
    )
    assert config.port == 8085 and config.burst is None and config.qps_tolerance == 0.05
    assert config_from_args([], {}).qps_tolerance == SandboxConfig().qps_tolerance
    with pytest.raises(SystemExit):
        config_from_args(["--qps-tolerance", "-0.01"], {})
    with pytest.raises(SystemExit):
        config_from_args(["--faults", "meteor"], {})


@pytest.mark.parametrize(
    ("argv", "extra"), [(["--qps", "5"], {"qps": 5}), (["--qps", "2.5"], {"qps": 2.5}), ([], {"qps": 0})]
)
def test_cli_connection_line_carries_the_sandboxs_qps(argv: list[str], extra: dict[str, float]) -> None:
    # Whoever copies the printed connection calls at the sandbox's own limit (0: neither limits).
    assert connection_extra(config_from_args(argv, {})) == extra
    assert type(connection_extra(config_from_args(argv, {}))["qps"]) is type(extra["qps"])
