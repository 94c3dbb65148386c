"""The parts of Typer that it does not export: Typer ships its own copy of click as
``typer._click`` and its completion machinery in private modules. Imported here only, so
that a Typer release that moves them breaks one module, and
``tests/cli/test_typer_internals.py`` says which name moved.
"""

from typer import _click as click
from typer._completion_classes import completion_init
from typer._completion_shared import get_completion_script

__all__ = ["click", "completion_init", "get_completion_script"]
