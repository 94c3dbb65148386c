"""OIDC exchange: a CI job's ID token for an s3sign run token, with no secret in the CI.

GitHub Actions and GitLab CI hand a job a JWT signed by their issuer that names the
repository, branch, workflow and run. ``POST /v1/token/exchange`` verifies it against the
issuer's published keys (its JWKS, found through ``/.well-known/openid-configuration`` and
cached), checks it against the server's rules (``oidc:`` in the config), and answers with
a token for the run the rule derives from the claims (``gh-{run_id}-{run_attempt}``).
The first rule that matches the claims, the run and the scopes asked for gives the token;
when none does, the first rule's reason is the answer.

What is refused, and why it matters:

- only the issuers in the rules: the token's ``iss`` is compared with them before any
  key is fetched, so a token never makes the server fetch from an address it names;
- only public-key algorithms (RS/PS/ES256..512, EdDSA): ``alg: none`` and an HS256
  token "signed" with the issuer's public key are refused before any key is looked at;
- the key is the one the issuer publishes under the token's ``kid``, and its algorithm
  must be the token's; an unknown ``kid`` fetches the keys again at most every minute;
- ``exp``, ``iat``, ``iss`` and ``aud`` are required (30 s of clock skew allowed);
- a rule must name at least one claim (on github.com, an issuer trusted with no claim
  rule would trust every repository on GitHub).

The issuer's answers are bounded like every peer's (5 s, 256 KiB); keys that cannot be
fetched again are used until they are an hour old, then the exchange answers 503.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import math
import re
import string
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt

from s3sign.errors import ConfigError
from s3sign.http.connections import Connections
from s3sign.http.transport import Transport
from s3sign.keys import PolicyError, check_run_id
from s3sign.protocol import ExchangeRequest, ExchangeResponse, ProtocolError
from s3sign.server.quotas import NO_QUOTA, Quota
from s3sign.server.tokens import SCOPES, UPLOAD, Keys, TokenError, mint_token
from s3sign.units import iso_utc, parse_duration, parse_size

# public-key algorithms only: never none, never HS256 (whose key would be the public one)
ALGORITHMS = frozenset(
    ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
)
KEYS_FRESH = 600.0  # seconds an issuer's keys are used before they are fetched again
KEYS_STALE = 3600.0  # ... and used while the issuer cannot be reached, at most
REFETCH_EVERY = 60.0  # an unknown kid fetches the keys again at most this often
FETCH_TIMEOUT = 5.0
MAX_ANSWER = 256 * 1024  # an issuer's discovery document or JWKS
MAX_KEYS = 100
MAX_ID_TOKEN = 16 * 1024  # characters: GitHub's are about 1,000
LEEWAY = 30  # seconds of clock skew between the issuer and this server
MAX_CI_SUBJECT = 256  # characters of the ID token's sub kept in the run token (audit log)
DEFAULT_TTL = 3600
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_UNSAFE_IN_RUN = re.compile(r"[^A-Za-z0-9._-]")
_RULE_KEYS = frozenset(
    {"issuer", "audience", "claims", "run", "scopes", "ttl", "max_bytes", "max_files", "jwks_url"}
)
log = logging.getLogger("s3sign.server")


@dataclass(frozen=True)
class OidcRule:
    """Whose ID tokens are traded, for which run, scopes and lifetime."""

    issuer: str
    audience: str
    claims: tuple[tuple[str, tuple[str, ...]], ...]  # claim -> patterns, any of which matches
    run: str  # a template of claims: gh-{run_id}-{run_attempt}
    scopes: tuple[str, ...] = (UPLOAD,)
    ttl: int = DEFAULT_TTL
    quota: Quota = NO_QUOTA
    jwks_url: str | None = None  # None: from the issuer's discovery document

    def refusal(self, claims: Mapping[str, Any]) -> TokenError | None:
        """Why the verified ``claims`` do not match this rule, or None when they do."""
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.audience not in audiences:
            return TokenError(401, "wrong_audience", f"the token is not for {self.audience!r}")
        for name, patterns in self.claims:
            value = claims.get(name)
            if value is None:
                return TokenError(403, "claim_missing", f"the token has no {name!r} claim")
            text = _claim_text(value)
            if text is None or not any(fnmatch.fnmatchcase(text, p) for p in patterns):
                shown = json.dumps(value)[:200]
                return TokenError(
                    403, "claim_mismatch", f"claim {name!r} is {shown}: no rule allows it"
                )
        return None

    def run_for(self, claims: Mapping[str, Any]) -> str:
        """The run the claims name, by the template (characters a run id may not hold
        become ``-``)."""
        values = {}
        for _, name, _, _ in string.Formatter().parse(self.run):
            if name:
                text = _claim_text(claims.get(name))
                if text is None:
                    raise TokenError(
                        403, "claim_missing", f"the run name needs the token's {name!r} claim"
                    )
                values[name] = _UNSAFE_IN_RUN.sub("-", text)
        run_id = self.run.format_map(values)
        try:
            check_run_id(run_id)
        except PolicyError as exc:
            raise TokenError(403, "invalid_run_name", f"{run_id!r}: {exc.message}") from None
        return run_id


def _claim_text(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value)


# --- the rules, from the settings ------------------------------------------------------


def oidc_rules(raw: Sequence[Mapping[str, object]], longest_ttl: int) -> tuple[OidcRule, ...]:
    """The settings' ``oidc`` list as rules; ``ConfigError`` naming the rule and key."""
    return tuple(_rule(index, rule, longest_ttl) for index, rule in enumerate(raw))


def _rule(index: int, raw: Mapping[str, object], longest_ttl: int) -> OidcRule:
    def bad(problem: str) -> ConfigError:
        return ConfigError(f"oidc[{index}]: {problem}", hint="see docs/ci.md, 'No stored secret'")

    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise bad(f"unknown key {sorted(unknown)[0]!r} (known: {', '.join(sorted(_RULE_KEYS))})")
    try:
        issuer = _url(raw.get("issuer"), "issuer")
        jwks_url = _url(raw["jwks_url"], "jwks_url") if raw.get("jwks_url") else None
        claims = _claim_rules(raw.get("claims"))
        run = _template(raw.get("run"))
        scopes = _scopes(raw.get("scopes", [UPLOAD]))
        ttl = parse_duration(str(raw.get("ttl", DEFAULT_TTL)))
        quota = Quota(
            parse_size(str(raw["max_bytes"])) if raw.get("max_bytes") is not None else None,
            _whole(raw["max_files"]) if raw.get("max_files") is not None else None,
        )
    except ValueError as exc:
        raise bad(str(exc)) from None
    audience = raw.get("audience", "s3sign")
    if not isinstance(audience, str) or not audience:
        raise bad("audience: expected a non-empty string")
    if not 60 <= ttl <= longest_ttl:
        raise bad(f"ttl: {ttl}s is outside 60s..{longest_ttl}s (max_token_ttl)")
    if quota and UPLOAD not in scopes:
        raise bad("max_bytes and max_files limit uploads: scopes must include upload")
    return OidcRule(issuer, audience, claims, run, scopes, ttl, quota, jwks_url)


def _url(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what}: expected an https URL")
    parts = urlsplit(value)
    loopback = parts.scheme == "http" and parts.hostname in _LOOPBACK
    if not (parts.scheme == "https" or loopback) or not parts.hostname:
        raise ValueError(f"{what}: {value!r} is not an https URL (http only on 127.0.0.1)")
    return value.rstrip("/") if what == "issuer" else value


def _claim_rules(value: object) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not isinstance(value, Mapping) or not value:
        raise ValueError(
            "claims: name at least one claim the token must have (repository: org/app):"
            " without, every repository the issuer serves would get tokens"
        )
    rules = []
    for name, patterns in value.items():
        listed = patterns if isinstance(patterns, list) else [patterns]
        if not listed or not all(isinstance(p, str | int) and str(p) for p in listed):
            raise ValueError(f"claims: {name}: expected a pattern or a list of patterns")
        rules.append((str(name), tuple(str(p) for p in listed)))
    return tuple(rules)


def _template(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("run: expected a template of claims, like gh-{run_id}-{run_attempt}")
    try:
        fields = list(string.Formatter().parse(value))
    except ValueError as exc:
        raise ValueError(f"run: {value!r}: {exc}") from None
    for literal, name, spec, conversion in fields:
        if _UNSAFE_IN_RUN.search(literal):
            raise ValueError(f"run: {literal!r} holds a character a run id may not")
        if name is not None and (not name.isidentifier() or spec or conversion):
            raise ValueError(f"run: {{{name}}} is not a claim name")
    return value


def _scopes(value: object) -> tuple[str, ...]:
    listed = value if isinstance(value, list) else [value]
    if not listed or any(scope not in SCOPES for scope in listed):
        raise ValueError(f"scopes: each one of {', '.join(SCOPES)}")
    return tuple(scope for scope in SCOPES if scope in listed)


def _whole(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"max_files: {value!r} is not a whole number")
    return value


# --- the issuers' keys ------------------------------------------------------------------


class IssuerKeys:
    """Each issuer's published keys (JWKS), fetched when first needed and kept a while."""

    def __init__(
        self,
        rules: Sequence[OidcRule],
        transport: Transport,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._where = {rule.issuer: rule.jwks_url for rule in rules}
        self._http = Connections(transport, "backend", FETCH_TIMEOUT, MAX_ANSWER)
        self._clock = clock
        self._keys: dict[str, tuple[dict[str, dict[str, Any]], float]] = {}  # -> (kid->jwk, at)
        self._tried: dict[str, float] = {}
        self._lock = threading.Lock()

    def key(self, issuer: str, kid: str | None) -> dict[str, Any] | None:
        """The issuer's JWK for ``kid`` (its only key when the token names none)."""
        with self._lock:  # one fetch at a time: a burst of exchanges fetches once
            now = self._clock()
            keys, at = self._keys.get(issuer, ({}, -math.inf))
            found = _pick(keys, kid)
            due = now - at >= KEYS_FRESH or found is None
            if due and now - self._tried.get(issuer, -math.inf) >= REFETCH_EVERY:
                self._tried[issuer] = now
                try:
                    keys = self._fetch(issuer)
                except (OSError, ValueError) as exc:
                    log.warning("cannot fetch the keys of OIDC issuer %s: %s", issuer, exc)
                else:
                    self._keys[issuer] = (keys, self._clock())
                    return _pick(keys, kid)
            if now - at >= KEYS_STALE:  # none fetched since: too old to trust
                raise ProtocolError(503, "issuer_unreachable", f"cannot fetch the keys of {issuer}")
            return found

    def _fetch(self, issuer: str) -> dict[str, dict[str, Any]]:
        url = self._where.get(issuer)
        if url is None:
            document = self._json(f"{issuer}/.well-known/openid-configuration")
            if document.get("issuer", "").rstrip("/") != issuer:
                raise ValueError("its discovery document names another issuer")
            url = _url(document.get("jwks_uri"), "jwks_uri")
        listed = self._json(url).get("keys")
        if not isinstance(listed, list):
            raise ValueError("its JWKS has no list of keys")
        keys = {}
        for jwk in listed[:MAX_KEYS]:
            # a signing key for a public-key algorithm; a symmetric one is never taken
            public = isinstance(jwk, dict) and jwk.get("kty") in ("RSA", "EC", "OKP")
            if public and jwk.get("use", "sig") == "sig":
                keys[str(jwk.get("kid", ""))] = jwk
        return keys

    def _json(self, url: str) -> dict[str, Any]:
        answer = self._http.request("GET", url, {"Accept": "application/json"})
        if answer.status != 200:
            raise ValueError(f"{url} answered {answer.status}")
        document = json.loads(answer.data)
        if not isinstance(document, dict):
            raise ValueError(f"{url} did not answer with a JSON object")
        return document


def _pick(keys: Mapping[str, dict[str, Any]], kid: str | None) -> dict[str, Any] | None:
    if kid is None:
        return next(iter(keys.values())) if len(keys) == 1 else None
    return keys.get(kid)


# --- the exchange -------------------------------------------------------------------------


class Exchanger:
    """Verify an ID token, match it with a rule, mint the run token."""

    def __init__(
        self,
        rules: Sequence[OidcRule],
        keys: Keys,
        transport: Transport,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rules = tuple(rules)
        self._secrets = keys
        self._issuer_keys = IssuerKeys(self.rules, transport, clock)

    def exchange(self, request: ExchangeRequest) -> tuple[ExchangeResponse, dict[str, Any]]:
        """The run token, and the ID token's verified claims (for the audit log)."""
        if not self.rules:
            raise ProtocolError(404, "oidc_disabled", "this backend trusts no OIDC issuer")
        claims = self._verified(request.token)
        refusal = None  # the first rule's, when none gives a token
        for rule in (rule for rule in self.rules if rule.issuer == claims["iss"]):
            try:
                return self._minted(rule, claims, request), claims
            except TokenError as exc:
                refusal = refusal or exc
        raise refusal or TokenError(401, "unknown_issuer", "no rule trusts this issuer")

    def _verified(self, token: str) -> dict[str, Any]:
        if len(token) > MAX_ID_TOKEN:
            raise TokenError(401, "invalid_token", "the ID token is too long to be one")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            raise TokenError(401, "invalid_token", "the ID token is not a JWT") from None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise TokenError(
                401,
                "invalid_token",
                f"alg {str(algorithm)[:20]!r} is not accepted: an issuer signs with its"
                " private key (RS256, ES256, ...)",
            )
        issuer = unverified.get("iss")
        audiences = {rule.audience for rule in self.rules if rule.issuer == issuer}
        if not isinstance(issuer, str) or not audiences:
            raise TokenError(401, "unknown_issuer", "no rule trusts the token's issuer")
        kid = header.get("kid")
        jwk = self._issuer_keys.key(issuer, kid if isinstance(kid, str) else None)
        shown = repr(kid)[:80]  # the caller's own, but said back bounded
        if jwk is None:
            raise TokenError(401, "unknown_key", f"{issuer} publishes no key {shown}")
        try:
            key = jwt.PyJWK(jwk, algorithm=None if "alg" in jwk else algorithm)
        except jwt.PyJWTError:
            raise TokenError(401, "unknown_key", f"{issuer}'s key {shown} is unusable") from None
        if key.algorithm_name != algorithm:
            raise TokenError(
                401,
                "invalid_token",
                f"signed with {algorithm}; the issuer's key is for {key.algorithm_name}",
            )
        return _decoded(token, key, algorithm, issuer, audiences)

    def _minted(
        self, rule: OidcRule, claims: Mapping[str, Any], request: ExchangeRequest
    ) -> ExchangeResponse:
        """The token ``rule`` gives for ``claims``, or ``TokenError`` saying why not."""
        refusal = rule.refusal(claims)
        if refusal is not None:
            raise refusal
        run_id = rule.run_for(claims)
        if request.run_id is not None and request.run_id != run_id:
            raise TokenError(
                403, "wrong_run", f"this ID token is for run {run_id}, not {request.run_id}"
            )
        scopes = tuple(request.scopes or rule.scopes)
        if any(scope not in rule.scopes for scope in scopes):
            raise TokenError(
                403, "wrong_scope", f"the server's rule allows {', '.join(rule.scopes)} only"
            )
        subject = _claim_text(claims.get("sub"))
        token, expires = mint_token(
            run_id,
            rule.ttl,
            self._secrets.minting,
            scopes=scopes,
            quota=rule.quota if UPLOAD in scopes else NO_QUOTA,
            ci=subject[:MAX_CI_SUBJECT] if subject else None,
        )
        return ExchangeResponse(token, run_id, list(scopes), iso_utc(expires))


def _decoded(
    token: str, key: jwt.PyJWK, algorithm: str, issuer: str, audiences: set[str]
) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[algorithm],
            audience=sorted(audiences),
            issuer=issuer,
            leeway=LEEWAY,
            options={"require": ["exp", "iat", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError(401, "token_expired", "the ID token has expired") from None
    except jwt.InvalidAudienceError:
        raise TokenError(401, "wrong_audience", "the ID token is not for this backend") from None
    except jwt.ImmatureSignatureError:
        raise TokenError(401, "invalid_token", "the ID token is not valid yet") from None
    except jwt.InvalidSignatureError:
        raise TokenError(
            401, "invalid_token", "the ID token's signature does not match the issuer's key"
        ) from None
    except jwt.InvalidTokenError as exc:
        raise TokenError(401, "invalid_token", f"the ID token is not valid: {exc}") from None
    return claims
