"""The signing backend: protocol v1 for workers, without ever touching an object's bytes.

``UploadSigner`` is the logic, for mounting in your own web app;
``create_app(settings)`` is the same as an ASGI app (FastAPI), which
``s3sign serve`` runs with uvicorn. Both are imported on first use, so that
``s3sign.server.tokens`` (used by ``token``) costs no more than itself.

May import signing and the core; never the transfer engine (the worker's side), the
command line or typer/rich.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from s3sign.protocol import ProtocolError
    from s3sign.s3limits import plan_parts
    from s3sign.server.app import create_app
    from s3sign.server.signer import UploadSigner

__all__ = ["ProtocolError", "UploadSigner", "create_app", "plan_parts"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from s3sign.server.app import create_app

        return create_app
    if name == "UploadSigner":
        from s3sign.server.signer import UploadSigner

        return UploadSigner
    if name in ("ProtocolError", "plan_parts"):
        import s3sign.protocol

        return getattr(s3sign.protocol, name)
    raise AttributeError(name)
