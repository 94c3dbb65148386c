"""Signing S3 requests with the caller's own credentials: SigV4 (pure), pre-signed URLs,
addressing, POST policies, ``explain``, JSON Lines batches, multipart uploads signed by
hand, and the few S3 calls s3sign makes with its own signatures (``store``).

Imports only the core (errors, units, config, credentials, protocol, http, ...): never
the command line, the transfer engine, the server or typer/rich.
"""
