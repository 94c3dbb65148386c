"""Moving bytes between a worker and S3 through a backend: the push engine (``push.py``:
planning and orchestration; ``upload.py``: one upload with its retries and the meaning of
S3's answers; ``parts.py``: multipart; ``verify.py``: skip-existing and complete), the
worker pool, the streamed local file listing, the backend client, the report, and
``push()`` for the library (``api.py``). ``pull`` belongs here too, beside ``push``.

Imports the core only (signing is allowed, and not needed): never the server (the two
sides share their rules through the core), the command line or typer/rich. Progress goes
to a ``Reporter``.
"""
