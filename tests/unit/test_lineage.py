"""Names of inputs and outputs: never a credential (lineage.py)."""

from __future__ import annotations

import os

import pytest

from airflow_provider_patsnap.lineage import endpoint_dataset, file_dataset, public_url, written_file_name


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
