"""Key rotation (several server secrets, tokens naming theirs by ``kid``) and revocation by
``jti`` (a deny list in the store, read at most every few seconds), at the unit level: the
integration tests (tests/integration/test_rotation.py) run them on real replicas."""

from __future__ import annotations

from datetime import UTC, datetime

import jwt
import pytest

from s3sign.errors import ConfigError
from s3sign.protocol import ProtocolError
from s3sign.server.handles import UploadHandles
from s3sign.server.revocations import Revocations
from s3sign.server.tokens import Keys, key_id, mint_token, server_keys, verify_token
from s3sign.signing.store import ObjectInfo, StoreError

OLD = b"old-secret-" + b"o" * 32
NEW = b"new-secret-" + b"n" * 32


def refused(token: str, keys: Keys, run: str = "r") -> str:
    with pytest.raises(ProtocolError) as caught:
        verify_token(token, keys, run)
    return f"{caught.value.code}: {caught.value.message}"


def test_any_listed_secret_verifies_and_the_first_mints() -> None:
    old_token = mint_token("r", 600, OLD)[0]
    assert jwt.get_unverified_header(old_token)["kid"] == key_id(OLD)
    rotating = Keys([NEW, OLD])
    assert verify_token(old_token, rotating, "r")["sub"] == "r"
    assert verify_token(mint_token("r", 600, rotating.minting)[0], rotating, "r")["sub"] == "r"
    assert "secret this server does not have" in refused(old_token, Keys([NEW]))


def test_a_token_without_a_key_id_is_tried_against_each_secret() -> None:
    now = int(datetime.now(UTC).timestamp())
    claims: dict[str, object] = {"iss": "s3sign", "aud": "s3sign-backend", "sub": "r"}
    claims |= {"scope": "upload", "iat": now, "exp": now + 600}
    older = jwt.encode(claims, OLD, algorithm="HS256")  # as tokens were before kid
    assert "kid" not in jwt.get_unverified_header(older)
    assert verify_token(older, Keys([NEW, OLD]), "r")["sub"] == "r"
    assert refused(older, Keys([NEW])).startswith("invalid_token")


def test_a_key_id_does_not_make_another_secrets_token_pass() -> None:
    now = int(datetime.now(UTC).timestamp())
    claims: dict[str, object] = {"iss": "s3sign", "aud": "s3sign-backend", "sub": "r"}
    claims |= {"scope": "upload", "iat": now, "exp": now + 600}
    forged = jwt.encode(claims, b"x" * 40, algorithm="HS256", headers={"kid": key_id(NEW)})
    assert refused(forged, Keys([NEW, OLD])).startswith("invalid_token")
    assert refused("not.a.token", Keys([NEW])).startswith("invalid_token")


def test_the_secrets_setting() -> None:
    keys = server_keys(None, f"{NEW.decode()}, {OLD.decode()}")
    assert keys.secrets == (NEW, OLD)
    assert server_keys(OLD.decode()).secrets == (OLD,)
    for single, many, said in (
        (OLD.decode(), NEW.decode(), "both"),
        (None, f"{NEW.decode()},,{OLD.decode()}", "empty secret"),
        (None, f"{NEW.decode()},short", "at least 32"),
        (None, None, "is not set"),
    ):
        with pytest.raises(ConfigError, match=said):
            server_keys(single, many)


def test_an_upload_started_before_the_rotation_can_be_finished_after() -> None:
    handle = UploadHandles(OLD).seal("runs/r/big", "upload-1")
    assert UploadHandles([NEW, OLD]).open("runs/r/big", handle) == "upload-1"
    assert UploadHandles([NEW, OLD]).seal("runs/r/big", "u") == UploadHandles(NEW).seal(
        "runs/r/big", "u"
    )
    with pytest.raises(Exception, match="not given out for this file"):
        UploadHandles(NEW).open("runs/r/big", handle)


class Folder:
    """A store that is a dict: put, list (sorted, start-after), delete, and a switch to
    make it fail."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.lists = 0
        self.down = False

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self._up()
        self.objects[key] = body

    def list_objects(
        self, prefix: str, start_after: str, token: str | None = None, max_keys: int = 1000
    ) -> tuple[list[tuple[str, ObjectInfo]], str | None]:
        self._up()
        self.lists += 1
        keys = sorted(k for k in self.objects if k.startswith(prefix) and k > start_after)
        return [(key, ObjectInfo(size=0, etag=key)) for key in keys], None

    def delete_if(self, key: str, etag: str) -> bool:
        self.objects.pop(key, None)
        return True

    def _up(self) -> None:
        if self.down:
            raise StoreError("the object store is unreachable", transient=True)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def replica(store: Folder, clock: Clock, wall: Clock) -> Revocations:
    return Revocations(store, "runs", 5, clock=clock, wall=wall)  # type: ignore[arg-type]


def test_a_revocation_reaches_every_replica_within_the_cache_time() -> None:
    store, clock, wall = Folder(), Clock(), Clock()
    wall.now = 1_800_000_000
    one, two = replica(store, clock, wall), replica(store, clock, wall)
    two.check("abc")  # read: nothing revoked
    assert one.revoke("abc", None, 3600) == 1_800_003_600
    assert list(store.objects) == ["runs/.s3sign/revoked/001800003600-abc"]
    with pytest.raises(ProtocolError, match="revoked") as caught:
        one.check("abc")  # at once where it was revoked
    assert (caught.value.status, caught.value.code) == (401, "token_revoked")
    lists = store.lists
    two.check("abc")  # the other replica's list is fresh: no store call, not yet seen
    assert store.lists == lists
    clock.now += 5
    with pytest.raises(ProtocolError, match="revoked"):
        two.check("abc")
    two.check("other")
    wall.now += 3601  # the token would have expired anyway: the entry means nothing
    clock.now += 5
    two.check("abc")


def test_revocations_are_bounded_and_cleaned_up() -> None:
    store, clock, wall = Folder(), Clock(), Clock()
    wall.now = 1_800_000_000
    one = replica(store, clock, wall)
    assert one.revoke("early", 1_800_000_010, 3600) == 1_800_000_010
    assert one.revoke("late", 9_999_999_999, 3600) == 1_800_003_600  # no token lives longer
    with pytest.raises(ProtocolError, match="jti"):
        one.revoke("../x", None, 3600)
    wall.now += 20
    one.revoke("next", None, 3600)  # and the expired entry is deleted
    assert sorted(store.objects) == [
        "runs/.s3sign/revoked/001800003600-late",
        "runs/.s3sign/revoked/001800003620-next",
    ]
    store.objects["runs/.s3sign/revoked/junk"] = b""  # not an entry: neither read nor deleted
    clock.now += 5
    one.check("early")


def test_a_replica_that_cannot_read_the_list_accepts_no_token() -> None:
    store, clock, wall = Folder(), Clock(), Clock()
    one = replica(store, clock, wall)
    store.down = True
    with pytest.raises(ProtocolError) as caught:
        one.check("abc")
    assert (caught.value.status, caught.value.code) == (503, "store_unreachable")
    store.down = False
    one.check("abc")
