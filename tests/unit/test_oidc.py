"""The OIDC exchange without a server around it: a local issuer (its own RSA keys and
JWKS on 127.0.0.1), the rules, and every way a token can be wrong."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from s3sign.errors import ConfigError
from s3sign.http.transport import Transport
from s3sign.protocol import ExchangeRequest, ProtocolError
from s3sign.server.oidc import REFETCH_EVERY, Exchanger, oidc_rules
from s3sign.server.tokens import Keys, verify_token
from tests.oidc_issuer import Issuer, rsa_key

SECRET = b"s" * 32
WEEK = 7 * 86400


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    with Issuer() as running:
        yield running


def exchanger(issuer: Issuer, clock: Clock | None = None, **changes: Any) -> Exchanger:
    rules = oidc_rules([issuer.rule(**changes)], WEEK)
    return Exchanger(rules, Keys([SECRET]), Transport(), clock or Clock())


def refused(exchange: Exchanger, token: str, **asked: Any) -> tuple[int, str, str]:
    with pytest.raises(ProtocolError) as caught:
        exchange.exchange(ExchangeRequest(token, **asked))
    return caught.value.status, caught.value.code, caught.value.message


def test_a_good_token_gets_a_run_token_for_the_run_its_claims_name(issuer: Issuer) -> None:
    answer, claims = exchanger(issuer).exchange(ExchangeRequest(issuer.mint(), "gh-123-1"))
    assert answer.run_id == "gh-123-1"
    assert answer.scopes == ["upload", "read"]
    assert claims["repository"] == "org/app"
    token = verify_token(answer.token, Keys([SECRET]), "gh-123-1", WEEK, "upload")
    assert token["ci"] == "repo:org/app:ref:refs/heads/main"
    assert token["exp"] - token["iat"] == 3600
    fewer = exchanger(issuer).exchange(ExchangeRequest(issuer.mint(), scopes=["read"]))[0]
    assert fewer.scopes == ["read"]


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"aud": "someone-else"}, 401, "wrong_audience"),
        ({"iss": "https://token.actions.githubusercontent.com"}, 401, "unknown_issuer"),
        ({"repository": "org/other"}, 403, "claim_mismatch"),
        ({"ref": "refs/pull/7/merge"}, 403, "claim_mismatch"),
        ({"repository": None}, 403, "claim_missing"),
        ({"exp": 1_000_000, "iat": 999_000, "nbf": 999_000}, 401, "token_expired"),
        ({"exp": None}, 401, "invalid_token"),
        ({"run_id": "12/3"}, None, None),  # a / becomes -: gh-12-3-1
        ({"run_attempt": None}, 403, "claim_missing"),
    ],
)
def test_claims_that_break_a_rule_are_refused_saying_which(
    issuer: Issuer, changes: dict[str, Any], status: int | None, code: str | None
) -> None:
    exchange = exchanger(issuer)
    token = issuer.mint(**changes)
    if status is None:
        assert exchange.exchange(ExchangeRequest(token))[0].run_id == "gh-12-3-1"
        return
    assert refused(exchange, token)[:2] == (status, code)


def test_a_token_signed_with_another_key_is_refused(issuer: Issuer) -> None:
    status, code, message = refused(exchanger(issuer), issuer.mint(key=rsa_key()))
    assert (status, code) == (401, "invalid_token")
    assert "signature does not match" in message


def test_alg_none_and_hs256_with_the_public_key_are_refused(issuer: Issuer) -> None:
    none = issuer.unsigned({"alg": "none", "typ": "JWT", "kid": issuer.kid})
    assert refused(exchanger(issuer), none)[:2] == (401, "invalid_token")
    # the classic confusion: the issuer's public key, published, used as an HMAC secret
    for secret in (issuer.public_pem(), issuer.jwk()["n"].encode()):
        forged = issuer.unsigned({"alg": "HS256", "typ": "JWT", "kid": issuer.kid}, secret)
        status, code, message = refused(exchanger(issuer), forged)
        assert (status, code) == (401, "invalid_token")
        assert "'HS256' is not accepted" in message


def test_a_key_of_the_wrong_algorithm_is_refused(issuer: Issuer) -> None:
    token = issuer.mint(algorithm="PS256")  # the JWKS says RS256 for this key
    assert refused(exchanger(issuer), token)[:2] == (401, "invalid_token")


def test_a_token_for_another_run_or_scope_is_refused(issuer: Issuer) -> None:
    assert refused(exchanger(issuer), issuer.mint(), run_id="release")[:2] == (403, "wrong_run")
    token = issuer.mint()
    assert refused(exchanger(issuer), token, scopes=["seal"])[:2] == (403, "wrong_scope")


def test_garbage_is_invalid_token(issuer: Issuer) -> None:
    for garbage in ("", "abc", "a.b.c", "x" * 20_000):
        assert refused(exchanger(issuer), garbage)[:2] == (401, "invalid_token")
    status, code, message = refused(exchanger(issuer), issuer.mint(kid="k" * 5000))
    assert (status, code) == (401, "unknown_key")
    assert len(message) < 200  # a hostile kid is not said back whole


def test_keys_are_cached_and_an_unknown_kid_fetches_again_at_most_every_minute(
    issuer: Issuer,
) -> None:
    clock = Clock()
    exchange = exchanger(issuer, clock)
    for _ in range(3):
        exchange.exchange(ExchangeRequest(issuer.mint()))
    assert issuer.requests["/jwks"] == 1
    # the issuer rotates its key: the new kid is fetched once the minute is over
    issuer.key, issuer.kid = rsa_key(), "key-2"
    assert refused(exchange, issuer.mint())[:2] == (401, "unknown_key")
    assert issuer.requests["/jwks"] == 1
    clock.now += REFETCH_EVERY
    assert exchange.exchange(ExchangeRequest(issuer.mint()))[0].run_id == "gh-123-1"
    assert issuer.requests["/jwks"] == 2


def test_an_issuer_down_is_503_once_its_keys_are_old(issuer: Issuer) -> None:
    clock = Clock()
    exchange = exchanger(issuer, clock)
    exchange.exchange(ExchangeRequest(issuer.mint()))
    issuer.up = False
    clock.now += 1800  # stale, not too old: the keys it has still verify
    assert exchange.exchange(ExchangeRequest(issuer.mint()))[0].run_id == "gh-123-1"
    clock.now += 3600
    assert refused(exchange, issuer.mint())[:2] == (503, "issuer_unreachable")
    clock.now += 1  # within the minute after a failed fetch: the old keys are still too old
    assert refused(exchange, issuer.mint())[:2] == (503, "issuer_unreachable")


def test_no_rule_no_exchange() -> None:
    exchange = Exchanger((), Keys([SECRET]), Transport())
    assert refused(exchange, "x.y.z")[:2] == (404, "oidc_disabled")


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"claims": {}}, "name at least one claim"),
        ({"issuer": "http://issuer.example.com"}, "not an https URL"),
        ({"run": "gh/{run_id}"}, "a character a run id may not"),
        ({"run": "gh-{run_id!r}"}, "is not a claim name"),
        ({"run": "gh-{0}"}, "is not a claim name"),
        ({"scopes": ["upload", "admin"]}, "scopes: each one of upload, read, seal"),
        ({"ttl": "30d"}, "outside 60s..604800s"),
        ({"colour": "blue"}, "unknown key 'colour'"),
        ({"max_bytes": "1GiB", "scopes": ["read"]}, "scopes must include upload"),
    ],
)
def test_bad_rules_are_a_config_error(issuer: Issuer, changes: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        oidc_rules([issuer.rule(**changes)], WEEK)
    assert says in caught.value.message
    assert caught.value.message.startswith("oidc[0]: ")


def test_the_rule_config_example_yaml_shows_is_valid() -> None:
    import yaml

    from tests.unit.test_config import REPO

    text = (REPO / "config.example.yaml").read_text()
    block = text.split("\n# oidc:\n", 1)[1].split("\n\n", 1)[0]
    rules = yaml.safe_load("\n".join(line.removeprefix("# ") for line in block.splitlines()))
    [rule] = oidc_rules(rules, WEEK)
    assert rule.issuer == "https://token.actions.githubusercontent.com"
    assert rule.claims == (("repository", ("org/app",)), ("ref", ("refs/heads/*",)))
