"""Property-based fuzzing of every endpoint of the real ``s3sign serve``: never a 5xx.

Bodies are drawn both as arbitrary JSON and in the protocol's own shape with
hostile values (unicode, control characters, huge and negative numbers,
wrong types), the way schemathesis would derive them from /openapi.json.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.conftest import Backend

pytestmark = pytest.mark.integration

RUN = "fuzz-run"
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
names = st.text(max_size=40) | st.just("../x") | st.just("a//b") | st.just(f"runs/{RUN}/x")
keys = st.one_of(st.text(max_size=60), names.map(lambda name: f"runs/{RUN}/{name}"))
numbers = st.integers(-(2**70), 2**70) | json_values
upload_ids = st.text(max_size=30) | st.just("abc_123")
file_specs = st.fixed_dictionaries(
    {"fileName": names | json_values, "fileSize": numbers},
    optional={"contentType": st.text(max_size=30) | json_values, "sha256": st.text(max_size=50)},
)
BODIES: dict[str, Any] = {
    "": st.fixed_dictionaries({"files": st.lists(file_specs, max_size=4)}) | json_values,
    "/parts": st.fixed_dictionaries(
        {
            "key": keys,
            "uploadId": upload_ids,
            "fileSize": numbers,
            "partNumbers": st.lists(st.integers(-5, 20_000), max_size=5),
        }
    )
    | json_values,
    "/complete": st.fixed_dictionaries(
        {
            "files": st.lists(
                st.fixed_dictionaries(
                    {"key": keys, "fileSize": numbers},
                    optional={
                        "uploadId": upload_ids,
                        "parts": st.lists(
                            st.fixed_dictionaries(
                                {"partNumber": numbers, "etag": st.text(max_size=10)}
                            ),
                            max_size=3,
                        ),
                    },
                ),
                max_size=3,
            )
        }
    )
    | json_values,
    "/abort": st.fixed_dictionaries({"key": keys, "uploadId": upload_ids}) | json_values,
}


@pytest.fixture(scope="module")
def fuzz_token(backend: Backend) -> str:
    return backend.token(RUN)


@pytest.mark.parametrize("endpoint", list(BODIES))
def test_no_server_errors(backend: Backend, fuzz_token: str, endpoint: str) -> None:
    session = requests.Session()
    url = f"{backend.url}/v1/runs/{RUN}/uploads{endpoint}"

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=BODIES[endpoint])
    def check(body: Any) -> None:
        response = session.post(
            url, json=body, headers={"Authorization": f"Bearer {fuzz_token}"}, timeout=60
        )
        assert response.status_code < 500, (body, response.text)
        assert "error" in response.json() or response.status_code == 200

    check()
