"""The command line: the Typer app, one module per command group, the console and the
progress displays.

This is the one package that imports typer or rich, and the one place where an
``S3SignError`` becomes an exit code and a line on stderr. It may import everything
below it (signing, transfer, server, local and the core); nothing imports it.
"""

from __future__ import annotations

from s3sign.cli.app import app, main, run

__all__ = ["app", "main", "run"]
