"""s3sign: move build artifacts straight from workers to S3 with pre-signed URLs.

The public Python API (imported on first use, so that ``import s3sign`` stays cheap for
the command line, whose cold start is a product feature):

- ``Presigner`` and ``SignRequest``: pre-signed URLs from your own credentials
  (``Presigner.from_settings(load_settings())``, then ``presigner.sign(request)``).
- ``UploadSigner``: the backend's logic (protocol v1), to mount in your own web app;
  ``create_app`` is the same as an ASGI app.
- ``push``: upload files into a run through a backend, as ``s3sign push`` does.
- ``load_settings``, ``PushReport``, ``S3SignError``: what the calls above take, return
  and raise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from s3sign.version import __version__

if TYPE_CHECKING:
    from s3sign.config import Settings, load_settings
    from s3sign.errors import S3SignError
    from s3sign.server.app import create_app
    from s3sign.server.signer import UploadSigner
    from s3sign.signing.presign import Presigner, SignedRequest, SignRequest
    from s3sign.transfer.api import push
    from s3sign.transfer.report import PushReport

__all__ = [
    "Presigner",
    "PushReport",
    "S3SignError",
    "Settings",
    "SignRequest",
    "SignedRequest",
    "UploadSigner",
    "__version__",
    "create_app",
    "load_settings",
    "push",
]

_WHERE = {
    "Presigner": "s3sign.signing.presign",
    "SignRequest": "s3sign.signing.presign",
    "SignedRequest": "s3sign.signing.presign",
    "UploadSigner": "s3sign.server.signer",
    "create_app": "s3sign.server.app",
    "push": "s3sign.transfer.api",
    "PushReport": "s3sign.transfer.report",
    "S3SignError": "s3sign.errors",
    "Settings": "s3sign.config",
    "load_settings": "s3sign.config",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 's3sign' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_WHERE[name]), name)
