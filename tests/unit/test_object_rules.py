"""The bucket's own rules as settings: parsed, checked against S3's limits, turned into the
headers signed into every upload, and compared with what a HEAD shows."""

from __future__ import annotations

import pytest

from s3sign.config import load_settings
from s3sign.errors import ConfigError, UsageError
from s3sign.objectrules import (
    SSE,
    SSE_KMS_KEY,
    STORAGE_CLASS,
    TAG_COUNT,
    TAGGING,
    ObjectRules,
    parse_tags,
)


def settings(**env: str):  # type: ignore[no-untyped-def]
    return load_settings(env={f"S3SIGN_{k.upper()}": v for k, v in env.items()})


def test_settings_become_the_signed_headers() -> None:
    rules = settings(
        sse="aws:KMS",
        sse_kms_key_id="alias/ci",
        storage_class="standard_ia",
        object_tags="retention=short&team=build ci",
    ).object_rules
    assert rules.headers == (
        (SSE, "aws:kms"),
        (SSE_KMS_KEY, "alias/ci"),
        (STORAGE_CLASS, "STANDARD_IA"),
        (TAGGING, "retention=short&team=build%20ci"),
    )
    assert settings().object_rules.headers == ()


def test_tags_from_yaml_are_a_mapping(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "s3sign.yaml"
    path.write_text("object_tags:\n  retention: 30d\n  owner: ci@example.com\n")
    rules = load_settings(config_path=path, env={}).object_rules
    assert rules.tags == (("retention", "30d"), ("owner", "ci@example.com"))


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"sse": "aes"}, "S3SIGN_SSE: 'aes' is not one of AES256, aws:kms"),
        ({"storage_class": "GLACIER"}, "cannot be read without a restore"),
        ({"sse_kms_key_id": "k1"}, "S3SIGN_SSE_KMS_KEY_ID: a KMS key id needs sse: aws:kms"),
        ({"sse": "aws:kms", "sse_kms_key_id": "k 1"}, "is not a KMS key id"),
        ({"object_tags": "retention"}, "'retention' is not key=value"),
        ({"object_tags": "a=1&a=2"}, "tag key 'a' is given twice"),
        ({"object_tags": "aws:x=1"}, "keys starting aws: are AWS's own"),
        ({"object_tags": "a=<b>"}, "tag 'a': its value is up to 256"),
        ({"object_tags": "&".join(f"k{n}=v" for n in range(11))}, "at most 10"),
        ({"object_tags": "k=" + "v" * 257}, "up to 256"),
    ],
)
def test_bad_rules_are_a_config_error_naming_the_variable(env: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(**env)
    assert says in caught.value.message


def test_a_bad_flag_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        load_settings({"sse": "none"}, env={})


def test_parse_tags_refuses_what_is_not_tags() -> None:
    with pytest.raises(ValueError, match="not a mapping"):
        parse_tags(["a", "b"])
    assert parse_tags({"keep": None}) == (("keep", ""),)


@pytest.mark.parametrize(
    ("stored", "missing"),
    [
        ({SSE: "aws:kms", SSE_KMS_KEY: "arn:aws:kms:eu-west-1:1:key/k1", TAG_COUNT: "1"}, None),
        ({SSE: "aws:kms", SSE_KMS_KEY: "k1", TAG_COUNT: "1"}, None),
        ({SSE: "AES256", TAG_COUNT: "1"}, "stored with encryption AES256, not aws:kms"),
        ({TAG_COUNT: "1"}, "stored with encryption none, not aws:kms"),
        (
            {SSE: "aws:kms", SSE_KMS_KEY: "arn:aws:kms:eu-west-1:1:key/k2", TAG_COUNT: "1"},
            "stored with another KMS key than k1",
        ),
        (
            {SSE: "aws:kms", SSE_KMS_KEY: "arn:aws:kms:eu-west-1:1:key/k1"},
            "stored with 0 tags, not 1",
        ),
    ],
)
def test_what_a_stored_object_lacks(stored: dict[str, str], missing: str | None) -> None:
    rules = ObjectRules("aws:kms", "k1", tags=(("team", "ci"),))
    assert rules.missing(stored) == missing


def test_storage_class_standard_is_what_s3_does_not_name() -> None:
    assert ObjectRules(storage_class="STANDARD").missing({}) is None
    assert ObjectRules(storage_class="STANDARD_IA").missing({}) == (
        "stored in storage class STANDARD, not STANDARD_IA"
    )
    assert ObjectRules(storage_class="STANDARD").missing({STORAGE_CLASS: "ONEZONE_IA"}) == (
        "stored in storage class ONEZONE_IA, not STANDARD"
    )


def test_a_kms_alias_cannot_be_compared_with_the_stored_key_arn() -> None:
    rules = ObjectRules("aws:kms", "alias/ci")
    assert rules.missing({SSE: "aws:kms", SSE_KMS_KEY: "arn:aws:kms:e:1:key/k"}) is None
    assert rules.missing({SSE: "aws:kms"}) == "stored with another KMS key than alias/ci"
