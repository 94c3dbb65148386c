"""The signing backend: protocol v1 for workers, without ever touching an object's bytes.

``UploadSigner`` is the logic, for mounting in your own web app;
``create_app(settings)`` is the same as an ASGI app (FastAPI), which
``s3sign serve`` runs with uvicorn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from s3sign.protocol import ProtocolError, plan_parts
from s3sign.server.signer import UploadSigner

if TYPE_CHECKING:
    from s3sign.server.app import create_app

__all__ = ["ProtocolError", "UploadSigner", "create_app", "plan_parts"]


def __getattr__(name: str) -> Any:
    if name == "create_app":  # FastAPI is imported only by those who serve HTTP
        from s3sign.server.app import create_app

        return create_app
    raise AttributeError(name)
