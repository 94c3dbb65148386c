"""Presets for S3-compatible services: endpoint, region, addressing and checksum rules.

``provider`` (``--provider``, ``S3SIGN_PROVIDER``, ``provider:``) fills in
what the user did not set, with the source ``provider`` in ``config show``:

| provider  | endpoint                               | region        | addressing | checksum |
|-----------|----------------------------------------|---------------|------------|----------|
| aws       | AWS, per region                        | required      | virtual    | sha256   |
| r2        | give https://ACCOUNT.r2.cloudflarestorage.com | auto   | path       | md5      |
| gcs       | https://storage.googleapis.com         | auto          | path       | md5      |
| b2        | give https://s3.REGION.backblazeb2.com | from endpoint | path       | md5      |
| minio     | give yours                             | us-east-1     | path       | sha256   |
| seaweedfs | give yours                             | us-east-1     | path       | sha256   |
| custom    | give yours                             | us-east-1     | path       | md5      |

The checksum is the header that service is documented to check on a
pre-signed PUT: ``x-amz-checksum-sha256`` where it is, else ``Content-MD5``.
Not every store checks what it is sent (moto checks neither): ``s3sign
doctor`` and ``s3sign serve`` find out what one really enforces (storecheck.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

ProviderName = Literal["aws", "r2", "gcs", "b2", "minio", "seaweedfs", "custom"]
_B2_HOST = re.compile(r"^s3\.([a-z0-9-]+)\.backblazeb2\.com$")


@dataclass(frozen=True)
class Provider:
    name: ProviderName
    endpoint_url: str | None  # fixed, or None: AWS's own (aws) or the user's (the others)
    endpoint_example: str | None  # shown when the user must give the endpoint
    region: str | None  # fixed, or None: the user's (aws) or read from the endpoint (b2)
    addressing: Literal["auto", "path"]
    checksum: Literal["sha256", "md5"]

    def region_for(self, endpoint_url: str | None) -> str | None:
        """The region this provider implies, if any (b2: from its endpoint's host)."""
        if self.name == "b2" and endpoint_url:
            host = endpoint_url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
            match = _B2_HOST.match(host)
            return match.group(1) if match else None
        return self.region


PROVIDERS: dict[str, Provider] = {
    provider.name: provider
    for provider in (
        Provider("aws", None, None, None, "auto", "sha256"),
        Provider("r2", None, "https://ACCOUNT_ID.r2.cloudflarestorage.com", "auto", "path", "md5"),
        Provider("gcs", "https://storage.googleapis.com", None, "auto", "path", "md5"),
        Provider("b2", None, "https://s3.us-west-004.backblazeb2.com", None, "path", "md5"),
        Provider("minio", None, "http://127.0.0.1:9000", "us-east-1", "path", "sha256"),
        Provider("seaweedfs", None, "http://127.0.0.1:8333", "us-east-1", "path", "sha256"),
        Provider("custom", None, "https://s3.example.com", "us-east-1", "path", "md5"),
    )
}
