"""Names of inputs and outputs: never a credential; the asset alias of emit_asset (lineage.py)."""

from __future__ import annotations

import hashlib
import os

import pytest

from airflow_provider_patsnap.lineage import (
    alias_name,
    endpoint_dataset,
    file_dataset,
    public_url,
    written_file_name,
)


@pytest.mark.parametrize(
    ("url", "public"),
    [
        ("http://user:secret@connect.example:8443/base", "http://connect.example:8443/base"),
        ("https://connect.patsnap.com", "https://connect.patsnap.com"),
        ("s3://AKIA:wJal%2Fr@bucket/key/a.jsonl", "s3://bucket/key/a.jsonl"),
        ("s3://aws_prod@bucket/key/", "s3://bucket/key/"),
        ("s3://bucket/a.jsonl?X-Amz-Signature=abc&X-Amz-Credential=k#frag", "s3://bucket/a.jsonl"),
        ("https://user:p%40ss@host?token=t", "https://host"),
        ("https://host#token", "https://host"),
        ("file://someone:pw@/data/a.jsonl", "file:///data/a.jsonl"),
        ("sqlite:///data/w.db?cache=private&key=secret", "sqlite:///data/w.db"),
        ("/data/a.jsonl", "/data/a.jsonl"),  # a local path is not a URL: nothing to take out
    ],
)
def test_a_public_url_has_no_user_info_query_or_fragment(url: str, public: str) -> None:
    assert public_url(url) == public


def test_every_name_of_a_dataset_is_public() -> None:
    source = endpoint_dataset("http://user:secret@127.0.0.1:8080/", "/advanced-patent-data/award-data")
    assert source == (
        "http://127.0.0.1:8080",
        "/advanced-patent-data/award-data",
        "http://127.0.0.1:8080/advanced-patent-data/award-data",
        None,
    )
    written = file_dataset("s3://key:secret@bucket/patsnap/a.jsonl?versionId=3")
    assert (written.namespace, written.name, written.uri) == (
        "s3://bucket",
        "patsnap/a.jsonl",
        "s3://bucket/patsnap/a.jsonl",
    )


def test_a_written_file_is_named_absolute() -> None:
    assert written_file_name("out/a.jsonl") == os.path.join(os.getcwd(), "out", "a.jsonl")
    assert written_file_name("file://u:pw@/data/a.jsonl") == "file:///data/a.jsonl"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("sync", "legal_events", "warehouse", "patsnap_legal_daily", None),
            "patsnap:sync.legal_events:warehouse/patsnap_legal_daily",
        ),
        (("sync", "group.awards", "wh", "enrich.awards", None), "patsnap:sync.group.awards:wh/enrich.awards"),
        (
            ("d", "t", None, "patsnap_award", "s3://aws_prod@bucket/a.jsonl"),
            "patsnap:d.t:s3://bucket/a.jsonl",  # as public_url names it: no connection id
        ),
        (
            ("d", "t", None, "patsnap_award", "s3://key:secret@bucket/a.jsonl?X-Amz-Signature=s"),
            "patsnap:d.t:s3://bucket/a.jsonl",  # nor a credential
        ),
        ((None, "t", None, "patsnap_award", "/data/a b.jsonl"), "patsnap:t:/data/a b.jsonl"),  # no DAG
        (("d", "t", None, "x", "/data/é%.jsonl"), "patsnap:d.t:/data/%C3%A9%25.jsonl"),  # ASCII only
    ],
)
def test_the_alias_is_the_dag_the_task_and_the_destination_as_written(args: tuple, expected: str) -> None:
    assert alias_name(*args) == expected


def test_a_very_long_name_is_cut_and_keeps_a_hash_of_the_whole() -> None:
    path = "/data/" + "x" * 2000 + ".jsonl"
    name = alias_name("d", "t", None, "x", path)
    whole = f"patsnap:d.t:{path}"
    assert len(name) == 1000 and name.endswith("~" + hashlib.sha1(whole.encode()).hexdigest())
    assert name.startswith(whole[:900])
    assert alias_name("d", "t", None, "x", path + "2") != name
