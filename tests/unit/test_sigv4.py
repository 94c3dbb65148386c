"""The signer against AWS's published example and, property by property, against botocore."""

from __future__ import annotations

import base64
import functools
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import botocore.session
from botocore.config import Config
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from s3sign.credentials import Credentials
from s3sign.errors import UsageError
from s3sign.objectrules import (
    SSE,
    SSE_KMS_KEY,
    STORAGE_CLASS,
    STORAGE_CLASSES,
    TAGGING,
    ObjectRules,
)
from s3sign.signing.addressing import Endpoint, check_key
from s3sign.signing.presign import Method, Presigner, SignRequest
from s3sign.signing.sigv4 import canonical_headers, presign_query, signing_key
from tests.conftest import EXAMPLE_ACCESS_KEY, EXAMPLE_SECRET_KEY


def test_aws_published_query_string_example() -> None:
    """ "Example: Presigned URL" from the S3 API reference, sigv4-query-string-auth."""
    query = presign_query(
        method="GET",
        host="examplebucket.s3.amazonaws.com",
        canonical_uri="/test.txt",
        headers=[],
        access_key=EXAMPLE_ACCESS_KEY,
        secret_key=EXAMPLE_SECRET_KEY,
        token=None,
        region="us-east-1",
        service="s3",
        timestamp="20130524T000000Z",
        expires=86400,
    )
    assert query == (
        "X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    )


def test_aws_published_signing_key_example() -> None:
    """The derived-key example from the SigV4 documentation (IAM, us-east-1, 20150830)."""
    key = signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830", "us-east-1", "iam")
    assert key.hex() == "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"


def test_canonical_headers_trim_and_sort() -> None:
    block, signed = canonical_headers([("x-amz-meta-b", "  two   words "), ("content-type", "a/b")])
    assert block == "content-type:a/b\nx-amz-meta-b:two words\n"
    assert signed == "content-type;x-amz-meta-b"


def test_operation_parameters_come_first_and_sort_by_name() -> None:
    """Query parameters whose names prefix each other sort as (name, value) pairs."""
    common: dict[str, Any] = {
        "method": "PUT",
        "host": "h",
        "canonical_uri": "/b/k",
        "headers": [],
        "access_key": "AK",
        "secret_key": "SK",
        "token": None,
        "region": "us-east-1",
        "service": "s3",
        "timestamp": "20240101T000000Z",
        "expires": 60,
    }
    query = presign_query(**common, query=[("partNumber", "2"), ("uploadId", "a-b")])
    assert query.startswith("partNumber=2&uploadId=a-b&X-Amz-Algorithm=")
    reordered = presign_query(**common, query=[("uploadId", "a-b"), ("partNumber", "2")])
    assert query.rsplit("=", 1)[1] == reordered.rsplit("=", 1)[1]


# --- differential: our presigner vs botocore's, byte for byte -------------------------

_KEY_ALPHABET = st.characters(
    codec="utf-8",
    categories=("L", "N", "P", "S", "Zs"),
    include_characters="/+~% !*'()&$@=;:,?#[]",
)


def _key_ok(key: str) -> bool:
    try:
        check_key(key)
    except UsageError:
        return False
    return True


_keys = st.text(_KEY_ALPHABET, min_size=1, max_size=80).filter(_key_ok)
_regions = st.sampled_from(
    [
        "us-east-1",
        "us-west-2",
        "eu-west-1",
        "eu-central-2",
        "ap-southeast-3",
        "sa-east-1",
        "cn-north-1",
        "us-gov-west-1",
        "auto",
    ]
)
_endpoints = st.sampled_from(
    [
        None,
        None,
        "http://127.0.0.1:8333",
        "https://s3.example.com",
        "http://localhost:9000/store",
        "https://minio.internal:443",
        "http://[::1]:9000",
    ]
)
_buckets = st.sampled_from(
    ["my-bucket", "logs.example.com", "a1b", "bucket-with-63-chars-" + "x" * 42]
)
_digest = st.binary(min_size=1, max_size=64)
_meta_names = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12)
_meta_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)


@st.composite
def _sign_requests(draw: st.DrawFn) -> SignRequest:
    method: Method = draw(st.sampled_from(["PUT", "PUT", "GET", "HEAD", "DELETE"]))
    request = SignRequest(
        bucket=draw(_buckets),
        key=draw(_keys),
        method=method,
        expires=draw(st.integers(1, 7 * 86400)),
    )
    if method != "PUT":
        return request
    data = draw(_digest)
    checksum = draw(st.sampled_from(["sha256", "md5", None]))
    meta = draw(st.dictionaries(_meta_names, _meta_values, max_size=3))
    rules = draw(_object_rules())
    return SignRequest(
        bucket=request.bucket,
        key=request.key,
        method="PUT",
        size=draw(st.integers(0, 5 * 1024**3)),
        content_type=draw(
            st.sampled_from(
                [None, "text/plain", "application/json; charset=utf-8", "application/x-tar"]
            )
        ),
        sha256=base64.b64encode(hashlib.sha256(data).digest()).decode()
        if checksum == "sha256"
        else None,
        md5=base64.b64encode(hashlib.md5(data).digest()).decode() if checksum == "md5" else None,
        meta=tuple(sorted(meta.items())),
        expires=request.expires,
        headers=rules.headers,
    )


_tag_text = st.text(
    st.characters(categories=("L", "N"), include_characters=" +-=._:/@"), max_size=20
)


@st.composite
def _object_rules(draw: st.DrawFn) -> ObjectRules:
    """The bucket's rules (s3sign.objectrules): encryption, KMS key, class, tags."""
    sse = draw(st.sampled_from(["", "AES256", "aws:kms", "aws:kms:dsse"]))
    key = draw(
        st.sampled_from(
            [
                "",
                "1234abcd-12ab-34cd-56ef-1234567890ab",
                "alias/ci",
                "arn:aws:kms:eu-west-1:1:key/k",
            ]
        )
        if sse.startswith("aws:kms")
        else st.just("")
    )
    tags = draw(
        st.dictionaries(
            _tag_text.filter(lambda t: bool(t) and not t.startswith("aws:")), _tag_text, max_size=3
        )
    )
    storage_class = draw(st.sampled_from(["", *STORAGE_CLASSES]))
    return ObjectRules(sse, key, storage_class, tuple(tags.items()))


# botocore's parameter for each header of ObjectRules.headers
_RULE_PARAMS = {
    SSE: "ServerSideEncryption",
    SSE_KMS_KEY: "SSEKMSKeyId",
    STORAGE_CLASS: "StorageClass",
    TAGGING: "Tagging",
}


@functools.lru_cache(maxsize=256)
def _botocore_client(region: str, endpoint: str | None, style: str, token: str | None) -> Any:
    session = botocore.session.get_session()
    return session.create_client(
        "s3",
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id=EXAMPLE_ACCESS_KEY,
        aws_secret_access_key=EXAMPLE_SECRET_KEY,
        aws_session_token=token,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": style, "us_east_1_regional_endpoint": "regional"},
            request_checksum_calculation="when_required",
        ),
    )


def _botocore_url(
    request: SignRequest,
    region: str,
    endpoint: str | None,
    style: str,
    token: str | None,
    moment: datetime,
) -> str:
    operation = {
        "PUT": "put_object",
        "GET": "get_object",
        "HEAD": "head_object",
        "DELETE": "delete_object",
    }[request.method]
    params: dict[str, Any] = {"Bucket": request.bucket, "Key": request.key}
    if request.method == "PUT":
        params["ContentLength"] = request.size
        if request.content_type:
            params["ContentType"] = request.content_type
        if request.sha256:
            params["ChecksumSHA256"] = request.sha256
        if request.md5:
            params["ContentMD5"] = request.md5
        if request.meta:
            params["Metadata"] = dict(request.meta)
        params.update((_RULE_PARAMS[name], value) for name, value in request.headers)
    client = _botocore_client(region, endpoint, style, token)
    naive_utc = moment.astimezone(UTC).replace(tzinfo=None)
    with mock.patch("botocore.auth.get_current_datetime", return_value=naive_utc):
        url: str = client.generate_presigned_url(
            operation, Params=params, ExpiresIn=request.expires
        )
    return url


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    request=_sign_requests(),
    region=_regions,
    endpoint=_endpoints,
    addressing=st.sampled_from(["auto", "virtual", "path"]),
    token=st.sampled_from([None, "FQoGZXIvYXdzE//token+with/slashes=="]),
    moment=st.datetimes(datetime(2015, 1, 1), datetime(2035, 1, 1), timezones=st.just(UTC)),
)
def test_presigned_urls_equal_botocore(
    request: SignRequest,
    region: str,
    endpoint: str | None,
    addressing: str,
    token: str | None,
    moment: datetime,
) -> None:
    moment = moment.replace(microsecond=0)
    # One deliberate difference: botocore virtual-hosts a dotted bucket onto an IP address
    # (http://a.b.127.0.0.1:8333/), which no DNS resolves; we use path style there.
    ip_endpoint = endpoint is not None and ("127.0.0.1" in endpoint or "[" in endpoint)
    assume(not (ip_endpoint and addressing == "virtual" and "." in request.bucket))
    credentials = Credentials(EXAMPLE_ACCESS_KEY, EXAMPLE_SECRET_KEY, token=token)
    presigner = Presigner(credentials, region, endpoint, addressing)  # type: ignore[arg-type]
    ours = presigner.sign(request, moment)
    is_aws = endpoint is None
    style = addressing
    if addressing == "auto":  # botocore's "auto" differs for custom endpoints: compare styles
        style = "virtual" if is_aws and "." not in request.bucket else "path"
    assert ours.url == _botocore_url(request, region, endpoint, style, token, moment)
    assert ours.expires_at == moment + timedelta(seconds=request.expires)


@settings(max_examples=50, deadline=None)
@given(rules=_object_rules(), content_type=st.sampled_from([None, "application/x-tar"]))
def test_multipart_create_with_the_bucket_rules_equals_botocore(
    rules: ObjectRules, content_type: str | None
) -> None:
    """The server's CreateMultipartUpload (ObjectStore.create_multipart) signs the rules
    as botocore's create_multipart_upload does."""
    moment = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    credentials = Credentials(EXAMPLE_ACCESS_KEY, EXAMPLE_SECRET_KEY)
    headers = rules.headers + ((("Content-Type", content_type),) if content_type else ())
    request = SignRequest(
        "my-bucket", "runs/r/a.bin", method="POST", query=(("uploads", ""),), headers=headers
    )
    ours = Presigner(credentials, "eu-west-1").sign(request, moment)
    params: dict[str, Any] = {"Bucket": "my-bucket", "Key": "runs/r/a.bin"}
    params.update((_RULE_PARAMS[name], value) for name, value in rules.headers)
    if content_type:
        params["ContentType"] = content_type
    client = _botocore_client("eu-west-1", None, "virtual", None)
    with mock.patch("botocore.auth.get_current_datetime", return_value=moment.replace(tzinfo=None)):
        theirs = client.generate_presigned_url(
            "create_multipart_upload", Params=params, ExpiresIn=request.expires
        )
    assert ours.url == theirs


def test_presigner_default_endpoint_shapes() -> None:
    credentials = Credentials("AK", "SK")
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    put = SignRequest("my-bucket", "a/b.txt", size=1)
    assert (
        Presigner(credentials, "eu-west-1")
        .sign(put, moment)
        .url.startswith("https://my-bucket.s3.eu-west-1.amazonaws.com/a/b.txt?")
    )
    dotted = SignRequest("my.bucket", "k", size=1)
    assert (
        Presigner(credentials, "eu-west-1")
        .sign(dotted, moment)
        .url.startswith("https://s3.eu-west-1.amazonaws.com/my.bucket/k?")
    )
    assert (
        Presigner(credentials, "us-east-1", "http://127.0.0.1:8333")
        .sign(put, moment)
        .url.startswith("http://127.0.0.1:8333/my-bucket/a/b.txt?")
    )
    assert Endpoint.for_region("cn-north-1").host == "s3.cn-north-1.amazonaws.com.cn"
