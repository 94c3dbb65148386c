"""A run token with no stored secret: the CI job's OIDC ID token, traded with the backend.

``push`` and ``pull`` given no run token look for an ID token: ``S3SIGN_OIDC_TOKEN``
(GitLab CI's ``id_tokens:``, or any CI that hands one out), else GitHub Actions' own
(``ACTIONS_ID_TOKEN_REQUEST_URL`` and ``..._TOKEN``, set for a job with
``permissions: id-token: write``), asked for the audience the backend's rule expects
(``S3SIGN_OIDC_AUDIENCE``, ``s3sign`` by default). The backend checks it against its
rules and answers with a token for the run (server/oidc.py). Neither token is printed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import quote

from s3sign.config import Settings
from s3sign.errors import CredentialsError
from s3sign.http.connections import Connections
from s3sign.http.transport import Transport
from s3sign.http.wire import network_problem
from s3sign.transfer.backend import BackendClient

GITHUB_URL = "ACTIONS_ID_TOKEN_REQUEST_URL"
GITHUB_TOKEN = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"  # noqa: S105 - the variable's name
REQUEST_TIMEOUT = 10.0
MAX_ANSWER = 64 * 1024  # GitHub's answer: {"count": ..., "value": "<a JWT of ~1 KiB>"}
GITHUB_HINT = "give the job 'permissions: id-token: write' (docs/ci.md, 'No stored secret')"


def ci_id_token(
    given: str | None, env: Mapping[str, str], audience: str, transport: Transport
) -> str | None:
    """The job's ID token: ``given`` (``S3SIGN_OIDC_TOKEN``), else GitHub Actions' for
    ``audience``; None outside a CI that hands one out."""
    if given:
        return given.strip()
    url, bearer = env.get(GITHUB_URL), env.get(GITHUB_TOKEN)
    if not url:
        return None
    if not bearer:
        raise CredentialsError(f"{GITHUB_URL} is set but {GITHUB_TOKEN} is not", hint=GITHUB_HINT)
    return _github_id_token(url, bearer, audience, transport)


def _github_id_token(url: str, bearer: str, audience: str, transport: Transport) -> str:
    """GET the ID token from GitHub's endpoint (its token is the job's, in the header)."""
    asked = f"{url}{'&' if '?' in url else '?'}audience={quote(audience, safe='')}"
    http = Connections(transport, "backend", REQUEST_TIMEOUT, MAX_ANSWER)
    headers = {"Authorization": f"Bearer {bearer}", "Accept": "application/json"}
    try:
        answer = http.request("GET", asked, headers)
    except OSError as exc:
        raise CredentialsError(
            f"cannot get the job's OIDC ID token from GitHub: {network_problem(exc)}",
            hint=GITHUB_HINT,
        ) from None
    finally:
        http.close()
    if answer.status != 200:
        raise CredentialsError(
            f"GitHub refused the job's OIDC ID token (HTTP {answer.status})", hint=GITHUB_HINT
        )
    try:
        value = json.loads(answer.data)["value"]
    except (ValueError, KeyError, TypeError):
        value = None
    if not isinstance(value, str) or not value:
        raise CredentialsError("GitHub's answer holds no OIDC ID token", hint=GITHUB_HINT)
    return value


def exchanged_token(client: BackendClient, id_token: str, run_id: str, scope: str) -> str:
    """The backend's run token for ``id_token``: refused, a ``CredentialsError`` (exit 4)
    saying which of the backend's rules the job broke."""
    try:
        return client.exchange(id_token, run_id, [scope]).token
    except CredentialsError as exc:
        raise CredentialsError(
            exc.message.replace("refused the token", "refused the job's OIDC ID token"),
            hint="the backend's oidc rules decide which jobs get tokens, for which run"
            " (docs/ci.md, 'No stored secret'); or pass a run token in S3SIGN_TOKEN",
        ) from None


def token_or_exchange(
    settings: Settings, env: Mapping[str, str], run_id: str, scope: str
) -> str | None:
    """The run token: the one given (``--token``, ``S3SIGN_TOKEN``), else one the backend
    trades for the CI job's ID token; None when there is neither."""
    if settings.token or not settings.backend:
        return settings.token
    transport = settings.transport
    id_token = ci_id_token(settings.oidc_token, env, settings.oidc_audience, transport)
    if id_token is None:
        return None
    client = BackendClient(settings.backend, "", transport=transport)
    try:
        return exchanged_token(client, id_token, run_id, scope)
    finally:
        client.close()
