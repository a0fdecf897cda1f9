"""Id sources: lists, queries and files as streams; shards that split any source without overlap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_provider_patsnap.exceptions import InvalidPatentIdsError
from airflow_provider_patsnap.id_sources import FileIds, Shard, SqlIds, source_of
from airflow_provider_patsnap.ids import match_key
from tests.helpers import numbers


def test_shards_split_ids_into_disjoint_parts_that_cover_them_all() -> None:
    ids = numbers(5000)
    shards = [Shard(number, 16) for number in range(16)]
    owners = [[shard for shard in shards if shard.holds(match_key(value))] for value in ids]
    assert all(len(owner) == 1 for owner in owners)
    sizes = [sum(1 for owner in owners if owner[0] == shard) for shard in shards]
    assert min(sizes) > 5000 / 16 * 0.7  # roughly even: no shard left idle
    assert Shard(3, 16).holds(match_key("cn100000003a")) == Shard(3, 16).holds("CN100000003A")  # by key


@pytest.mark.parametrize("bad", [[16, 16], [-1, 4], [1], "0/4", [True, 4], [0, 0], [1.0, 4]])
def test_a_bad_shard_is_named(bad: object) -> None:
    with pytest.raises(InvalidPatentIdsError, match="shard"):
        SqlIds("warehouse", "SELECT pn FROM portfolio", shard=bad)  # type: ignore[arg-type]


def test_a_source_travels_as_json_and_comes_back_the_same() -> None:
    query = SqlIds("warehouse", "SELECT pn FROM portfolio WHERE day = %s", ["2026-12-01"])
    files = FileIds("s3://bucket/ids/", column="pn")
    for source in (query, files):
        specs = source.shards(4)
        assert [source_of(json.loads(json.dumps(spec))).shard for spec in specs] == [  # type: ignore[union-attr]
            Shard(number, 4) for number in range(4)
        ]
        assert source_of(json.loads(json.dumps(source.spec()))) == source
    assert len(json.dumps(query.shards(16))) < 16 * 200  # a few bytes per shard in XCom


@pytest.mark.parametrize(
    "spec, words",
    [
        ({"source": "ftp", "path": "x"}, "source 'sql' or 'files'"),
        ({"source": "sql", "conn_id": "warehouse"}, "not valid"),
        ({"source": "sql", "conn_id": "", "sql": "SELECT 1"}, "conn_id must be non-empty"),
        ({"source": "files", "path": "ids.csv", "file_format": "xlsx"}, "file_format must be one of"),
    ],
)
def test_a_bad_spec_is_named(spec: dict[str, object], words: str) -> None:
    with pytest.raises(InvalidPatentIdsError, match=words):
        source_of(spec)


def test_a_list_or_a_dict_without_source_is_no_source() -> None:
    assert source_of(["CN1A"]) is None and source_of("CN1A,CN2A") is None and source_of({"pn": 1}) is None


def test_csv_ids_come_from_the_named_column_or_the_first(tmp_path: Path) -> None:
    (tmp_path / "ids.csv").write_text("\ufeffpn,title\nCN1A,one\n\nCN2A,two\n", encoding="utf-8")
    assert list(FileIds(str(tmp_path / "ids.csv")).values()) == ["CN1A", "CN2A"]
    assert list(FileIds(str(tmp_path / "ids.csv"), column="title").values()) == ["one", "two"]
    with pytest.raises(InvalidPatentIdsError, match="has no column 'number'; its header is"):
        list(FileIds(str(tmp_path / "ids.csv"), column="number").values())


def test_ndjson_ids_are_strings_or_a_field_of_objects(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('"CN1A"\n\n"CN2A"\n', encoding="utf-8")
    (tmp_path / "b.ndjson").write_text('{"pn": "CN3A"}\n{"pn": "CN4A", "x": 1}\n', encoding="utf-8")
    assert list(FileIds(str(tmp_path / "a.jsonl")).values()) == ["CN1A", "CN2A"]
    with pytest.raises(InvalidPatentIdsError, match="give column"):
        list(FileIds(str(tmp_path / "b.ndjson")).values())
    assert list(FileIds(str(tmp_path / "b.ndjson"), column="pn").values()) == ["CN3A", "CN4A"]


def test_a_folder_is_read_file_by_file_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "2.csv").write_text("pn\nCN2A\n", encoding="utf-8")
    (tmp_path / "1.csv").write_text("pn\nCN1A\n", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not ids", encoding="utf-8")
    assert list(FileIds(str(tmp_path)).values()) == ["CN1A", "CN2A"]
    with pytest.raises(InvalidPatentIdsError, match="no csv, ndjson or parquet files"):
        list(FileIds(str(tmp_path / "empty_folder_that_is_a_file.txt")).values()) if False else list(
            FileIds(str(_empty(tmp_path))).values()
        )


def _empty(tmp_path: Path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


def test_a_file_source_is_named_without_the_credentials_of_its_url(tmp_path: Path) -> None:
    files = FileIds("s3://key:PW-ids-3c1f@bucket/ids/", column="pn", shard=(0, 2))
    assert files.describe() == "the files at s3://bucket/ids/ (shard 1/2)"
    assert "PW-ids-3c1f" not in repr(files)
    assert files.spec()["path"] == "s3://key:PW-ids-3c1f@bucket/ids/"  # what a reader needs is kept
    (tmp_path / "ids.csv").write_text("pn\nCN1A\n", encoding="utf-8")
    with pytest.raises(InvalidPatentIdsError) as raised:
        list(FileIds(f"file://someone:PW-ids-3c1f@{tmp_path}/ids.csv", column="number").values())
    assert str(raised.value).startswith(f"file://{tmp_path}/ids.csv has no column 'number'")


def test_parquet_ids_come_from_the_named_column_or_the_first(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"pn": ["CN1A", "CN2A", None], "owner": ["a", "b", "c"]})
    pq.write_table(table, tmp_path / "ids.parquet", row_group_size=2)
    assert list(FileIds(str(tmp_path / "ids.parquet")).values()) == ["CN1A", "CN2A", None]
    assert list(FileIds(str(tmp_path / "ids.parquet"), column="owner").values()) == ["a", "b", "c"]
    with pytest.raises(InvalidPatentIdsError, match="has no column 'number'"):
        list(FileIds(str(tmp_path / "ids.parquet"), column="number").values())
