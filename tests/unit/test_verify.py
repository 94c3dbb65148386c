"""What the server concludes from a stored object: complete's mismatches and status's answers.

The rule under test: a deletion is never decided from the shape of a header value,
and a stored checksum is proof only when the store verified it on upload.
"""

from __future__ import annotations

import pytest

from s3sign.digests import composite_sha256
from s3sign.protocol import CompletedPart, CompleteFile, StatusFile, StoreChecks
from s3sign.server.verify import compare, completed, mismatch
from s3sign.signing.store import ObjectInfo

PARTS = [CompletedPart(1, "e1", "AAAA"), CompletedPart(2, "e2", "BBBB")]
COMPOSITE = composite_sha256(["AAAA", "BBBB"])  # "...=-2"
STRICT = StoreChecks(True, True, True, True, True, True, True)  # AWS, SeaweedFS
LAX = StoreChecks(False, False, False, False, False, True, False)  # moto


@pytest.mark.parametrize(
    "stored", [COMPOSITE, COMPOSITE.rsplit("-", 1)[0]], ids=["with -N", "without -N (moto)"]
)
def test_an_assembled_object_is_compared_by_its_composite_however_it_is_written(
    stored: str,
) -> None:
    item = CompleteFile("k", 10, sha256="the whole file's", upload_id="u", parts=PARTS)
    info = ObjectInfo(10, "etag-2", checksum=stored)
    assert mismatch(item, info) is None  # never the whole-file SHA-256 against a composite
    assert completed(item, info).parts_sha256 == COMPOSITE
    assert completed(item, info).sha256 is None
    other = [CompletedPart(1, "e1", "AAAA"), CompletedPart(2, "e2", "CCCC")]
    assert mismatch(CompleteFile("k", 10, upload_id="u", parts=other), info) == (
        "checksum_mismatch",
        "the stored SHA-256 differs",
    )


def test_a_single_put_is_compared_by_its_sha256_and_size() -> None:
    info = ObjectInfo(3, "e", checksum="S=")
    assert mismatch(CompleteFile("k", 3, sha256="S="), info) is None
    assert mismatch(CompleteFile("k", 3, sha256="T="), info) is not None
    assert mismatch(CompleteFile("k", 4), info) == ("size_mismatch", "stored 3 bytes, declared 4")
    assert mismatch(CompleteFile("k", 3, sha256="T="), ObjectInfo(3, "e")) is None  # none kept


def test_status_trusts_a_stored_sha256_only_on_a_store_that_verifies_it() -> None:
    info = ObjectInfo(3, "abc", checksum="S=")
    spec = StatusFile("a", 3, sha256="S=")
    assert (compare(spec, "k", info, STRICT).status, compare(spec, "k", info, STRICT).match) == (
        "same",
        "sha256",
    )
    for checks in (LAX, None):  # an echo of what was declared proves nothing
        answer = compare(spec, "k", info, checks)
        assert (answer.status, answer.match) == ("different", None)


def test_status_by_etag_where_the_store_computes_it_as_the_md5() -> None:
    info = ObjectInfo(3, "ABC", checksum=None)
    assert compare(StatusFile("a", 3, etag='"abc"'), "k", info, LAX).status == "same"
    assert compare(StatusFile("a", 3, etag="abd"), "k", info, LAX).status == "different"
    no_md5 = StoreChecks(etag_is_md5=False)  # SSE-KMS on AWS: ETags are not MD5s
    assert compare(StatusFile("a", 3, etag="abc"), "k", info, no_md5).match is None


def test_status_of_a_multipart_object() -> None:
    info = ObjectInfo(10, "etag-2", checksum=COMPOSITE.rsplit("-", 1)[0])
    answer = compare(StatusFile("a", 10, sha256="X=", parts_sha256=COMPOSITE), "k", info, STRICT)
    assert (answer.status, answer.match, answer.parts_sha256) == (
        "same",
        "partsSha256",
        info.checksum,
    )
    whole_only = compare(StatusFile("a", 10, sha256=info.checksum), "k", info, STRICT)
    assert whole_only.status == "different"  # a whole-file SHA-256 is no composite


def test_status_missing_by_size_and_by_size_alone() -> None:
    assert compare(StatusFile("a", 3), "k", None, STRICT).status == "missing"
    info = ObjectInfo(3, "e")
    assert compare(StatusFile("a", 4, sha256="S="), "k", info, STRICT).match == "size"
    alone = compare(StatusFile("a", 3), "k", info, None)
    assert (alone.status, alone.match) == ("same", "size")


class FakeStore:
    """Objects by key; counts HEADs and listings; refuses to delete (status changes nothing)."""

    bucket = "b"

    def __init__(self, objects: dict[str, ObjectInfo]) -> None:
        self.objects = objects
        self.heads: list[str] = []
        self.listings = 0

    def head(self, key: str) -> ObjectInfo | None:
        self.heads.append(key)
        return self.objects.get(key)

    def list_objects(
        self, prefix: str, start_after: str, token: str | None = None, max_keys: int = 1000
    ) -> tuple[list[tuple[str, ObjectInfo]], str | None]:
        self.listings += 1
        found = sorted((k, ObjectInfo(v.size, v.etag)) for k, v in self.objects.items())
        return [(k, v) for k, v in found if k.startswith(prefix) and k > start_after], None

    def delete_if(self, key: str, etag: str) -> bool:
        raise AssertionError("status deleted something")


def test_status_lists_for_sizes_and_etags_and_heads_for_checksums() -> None:
    """A listing shows no checksums: a file compared by its SHA-256 or composite gets a
    HEAD even when the rest come from the listing (25 files: over the listing's threshold)."""
    from s3sign.config import Settings
    from s3sign.credentials import Credentials
    from s3sign.protocol import StatusRequest
    from s3sign.server import UploadSigner
    from s3sign.signing.presign import Presigner

    objects = {f"runs/r/{i:02}.txt": ObjectInfo(3, f"e{i}") for i in range(25)}
    objects["runs/r/big.bin"] = ObjectInfo(10, "etag-2", checksum=COMPOSITE)
    store = FakeStore(objects)
    signer = UploadSigner(
        Settings(region="eu-west-1", bucket="b"),
        Presigner(Credentials("AKIAEXAMPLE", "secret"), "eu-west-1"),
        store=store,  # type: ignore[arg-type]
        store_checks=STRICT,
    )
    files = [StatusFile(f"{i:02}.txt", 3, etag=f"e{i}") for i in range(25)]
    files.append(StatusFile("big.bin", 10, parts_sha256=COMPOSITE))
    answers = signer.status("r", StatusRequest(files)).files
    assert [a.status for a in answers] == ["same"] * 26
    assert answers[-1].match == "partsSha256"
    assert store.listings >= 1
    assert store.heads == ["runs/r/big.bin"]
