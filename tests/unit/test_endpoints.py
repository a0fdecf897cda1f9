"""The endpoint table maps the vendor's documented example payloads to the documented flat rows.

The inputs are the "Success Response Example" objects of the vendor pages (../shared/patsnap-api/),
quirks included: ``seic_no`` and ``event_code`` as JSON numbers, ``award_session`` as an int.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_patsnap.endpoints import ENDPOINTS, PatentRows
from tests.helpers import record_key, records

FETCHED = "2026-11-25T00:00:00+00:00"


def rows(code: str, patent_json: str) -> list[dict[str, Any]]:
    # Parsed as the hook parses responses: floats stay text.
    return records(ENDPOINTS[code], json.loads(patent_json, parse_float=str), FETCHED)


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


def test_p026_keeps_every_field_an_event_carries_whatever_its_source() -> None:
    [inpadoc] = rows(
        "P026",
        '{"pn": "CN1A", "patent_id": "p1", "event_vol": "patent-level", "patsnap_legal_data":'
        ' {"inpadoc_legal_data": [{"event_code": "B350", "event_date": 20211207, "event_vol": "12"}]}}',
    )
    assert inpadoc["event_vol"] == "12"  # a field of the event, never one of the patent
    assert inpadoc["ref_country_code"] is None and inpadoc["event_legal_status"] is None


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


def test_a_date_that_is_not_a_date_is_an_error_not_a_null() -> None:  # map_patent makes it a reject
    with pytest.raises(ValueError, match="YYYYMMDD"):
        rows("P031", '{"pn": "CN1", "patent_id": "x", "patent_customs_record_data": [{"end_date": "soon"}]}')


def mapped(code: str, patent_json: str) -> PatentRows:
    return ENDPOINTS[code].map_patent(json.loads(patent_json, parse_float=str), FETCHED)


@pytest.mark.parametrize(
    "code, payload, words",
    [
        ("P032", '{"award_name": "Gold"}', "expected a list of objects, got an object"),
        ("P032", '["Gold"]', "a list holding a string"),
        ("P026", '[{"event_code": "B350"}]', "expected an object with inpadoc_legal_data"),
        ("P026", '{"inpadoc_legal_data": {"event_code": "B350"}}', "inpadoc_legal_data as a list"),
        ("P022", '"A01"', "got a string"),
    ],
)
def test_a_payload_shape_the_mapping_does_not_know_is_a_reject_naming_endpoint_and_patent(
    code: str, payload: str, words: str
) -> None:
    key = ENDPOINTS[code].payload_key
    result = mapped(code, f'{{"pn": "CN7A", "patent_id": "p7", "{key}": {payload}}}')
    assert result.rows == []
    [reject] = result.rejects
    assert reject.reason.startswith(f"{code} {key} of 'CN7A'") and words in reject.reason
    assert json.loads(reject.raw_value) == json.loads(payload, parse_float=str)


@pytest.mark.parametrize(
    "written", ["2021/12/07", "2021-12-07", "2021.12.7", "20211207", 20211207, "20211207.0"]
)
def test_dates_with_other_separators_are_normalised(written: object) -> None:
    record = {"record_number": "R1", "start_date": written}
    [row] = rows("P031", json.dumps({"pn": "CN1A", "patent_id": "x", "patent_customs_record_data": [record]}))
    assert row["start_date"] == 20211207


def test_one_bad_value_rejects_its_record_only() -> None:
    records = [
        {"record_number": "R1", "start_date": "20211207"},
        {"record_number": "R2", "start_date": "20211207000000000000"},  # 20 digits: no BIGINT holds it
        {"record_number": "R3", "start_date": "2021/13/01"},
        {"record_number": {"nested": 1}, "start_date": "20211207"},
    ]
    result = mapped(
        "P031", json.dumps({"pn": "CN1A", "patent_id": "x", "patent_customs_record_data": records})
    )
    number_at = ENDPOINTS["P031"].column_names.index("record_number")
    assert [row[number_at] for row in result.rows] == ["R1"]
    reasons = [reject.reason for reject in result.rejects]
    assert "start_date: expected a YYYYMMDD date, got '20211207000000000000'" in reasons[0]
    assert "start_date" in reasons[1] and "record_number: expected text" in reasons[2]
    assert [json.loads(reject.raw_value) for reject in result.rejects] == records[1:]


def test_nul_and_lone_surrogates_are_cleaned_and_the_raw_value_keeps_them() -> None:
    text = (
        '{"pn": "CN1A\\u0000", "patent_id": "x", "patent_award_data": [{"award_name": "A\\u0000B\\ud800C"}]}'
    )
    [row] = rows("P032", text)
    assert row["award_name"] == "AB\ufffdC" and row["pn"] == "CN1A"
    row["award_name"].encode("utf-8")  # storable anywhere


def test_patents_without_patent_id_never_share_record_keys() -> None:
    first = rows("P032", '{"pn": "CN1A", "patent_award_data": [{"award_name": "Gold"}]}')
    second = rows("P032", '{"pn": "CN2A", "patent_award_data": [{"award_name": "Gold"}]}')
    assert first[0]["record_key"] != second[0]["record_key"]
