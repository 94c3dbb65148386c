"""Moving bytes between a worker and S3 through a backend: the push engine (planning,
uploads with their retries and the meaning of S3's answers, multipart), the worker pool,
the local file listing, digests and the backend client.

Imports only the core: never the server (the two sides share rules through the core,
never each other), the command line or typer/rich. Progress goes to a ``Reporter``.
"""
