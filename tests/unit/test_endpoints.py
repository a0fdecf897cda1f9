"""The endpoint table maps the vendor's documented example payloads to the documented flat rows.

The inputs are the "Success Response Example" objects of the vendor pages (../shared/patsnap-api/),
quirks included: ``seic_no`` and ``event_code`` as JSON numbers, ``award_session`` as an int.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_patsnap.endpoints import ENDPOINTS, record_key

FETCHED = "2026-11-25T00:00:00+00:00"


def rows(code: str, patent_json: str) -> list[dict[str, Any]]:
    # Parsed as the hook parses responses: floats stay text.
    return list(ENDPOINTS[code].rows(json.loads(patent_json, parse_float=str), FETCHED))


def test_p022_seic_numbers_become_text_and_lang_comes_from_the_patent() -> None:
    [row] = rows(
        "P022",
        '{"pn": "CN110650438A", "lang": "en", "patent_id": "1e099a74-4378-4b84-9d13-f1b4ed5cb59b",'
        ' "seic_classification": [{"seic_lv1": {"seic_no": 1.1, "seic_desc": "下一代信息网络产业"},'
        ' "seic_lv2": {"seic_no": 1.10, "seic_desc": "下一代信息网络产业"}}]}',
    )
    assert row["lang"] == "en"
    assert (row["seic_lv1_no"], row["seic_lv2_no"]) == ("1.1", "1.10")  # 1.10 is not 1.1
    assert row["seic_lv2_desc"] == "下一代信息网络产业"
    assert row["record_key"] == record_key(row["patent_id"], ["en", "1.1", "1.10"])


def test_p026_gives_one_row_per_event_with_its_source() -> None:
    inpadoc, official = rows(
        "P026",
        '{"pn": "US11205304B2", "patent_id": "718ead9c-4f3c-4674-8f5a-24e126827269",'
        ' "patsnap_legal_data": {"inpadoc_legal_data": [{"event_code": "B350", "event_date": 20211207,'
        ' "event_desc": "ATUALIZACAO", "ref_country_code": "BR"}], "official_legal_data": [{"event_vol":'
        ' "2605", "event_code": 1.3, "event_date": 20201208, "event_desc": "Notificação - Fase Nacional - PCT",'
        ' "event_others": "法律状态其他信息", "event_legal_status": "专利权的终止"}]}}',
    )
    assert (inpadoc["source"], inpadoc["event_code"], inpadoc["event_date"]) == ("inpadoc", "B350", 20211207)
    assert inpadoc["event_vol"] is None and inpadoc["ref_country_code"] == "BR"
    assert (official["source"], official["event_code"], official["event_date"]) == (
        "official",
        "1.3",
        20201208,
    )
    assert official["event_legal_status"] == "专利权的终止" and official["ref_country_code"] is None
    assert inpadoc["record_key"] != official["record_key"]
    assert set(inpadoc) == set(ENDPOINTS["P026"].column_names)


def test_p032_award_session_as_int_becomes_text() -> None:
    [row] = rows(
        "P032",
        '{"pn": "US11205304B2", "patent_id": "718ead9c", "patent_award_data": [{"category": "Popular",'
        ' "award_name": "European Inventor Award", "award_level": "优秀奖", "award_session": 2018,'
        ' "award_referrer": "大连市知识产权局"}]}',
    )
    assert row["award_session"] == "2018" and row["award_referrer"] == "大连市知识产权局"


def test_p031_dates_stay_integers_and_japanese_text_is_intact() -> None:
    [row] = rows(
        "P031",
        '{"pn": "US11205304B2", "patent_id": "718ead9c", "patent_customs_record_data": [{"contact":'
        ' "原田雅章知財事務所", "country": "JP", "product": "電荷制御剤", "end_date": 20201119,'
        ' "start_date": "20150902", "record_number": "P4627367-20150902-20201119", "record_status": "生效",'
        ' "approval_opinion": "已审批、核准"}]}',
    )
    assert (row["start_date"], row["end_date"]) == (20150902, 20201119)
    assert row["contact"] == "原田雅章知財事務所" and row["record_number"] == "P4627367-20150902-20201119"


def test_a_patent_without_payload_gives_no_rows() -> None:
    assert rows("P032", '{"pn": "CN1", "patent_id": "x"}') == []


def test_a_date_that_is_not_a_date_is_an_error_not_a_null() -> None:
    with pytest.raises(ValueError, match="YYYYMMDD"):
        rows("P031", '{"pn": "CN1", "patent_id": "x", "patent_customs_record_data": [{"end_date": "soon"}]}')
