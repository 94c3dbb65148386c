"""S3's XML answers: the code and message of an error, a field of a result.

Parsed with the standard library; these documents come from the store the
request went to, and carry no DTDs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported on the first document: a push that meets no error skips it
    import xml.etree.ElementTree as ET

S3_NAMESPACE = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def _root(document: str | bytes) -> ET.Element | None:
    import xml.etree.ElementTree as ET

    try:
        return ET.fromstring(document)  # noqa: S314 - the store's own answer
    except ET.ParseError:
        return None


def s3_error(document: str | bytes) -> tuple[str, str] | None:
    """(code, message) of an ``<Error>`` document; None for anything else."""
    root = _root(document)
    if root is None or root.tag not in ("Error", S3_NAMESPACE + "Error"):
        return None
    return root.findtext("Code") or "", root.findtext("Message") or ""


def xml_text(document: str | bytes, tag: str) -> str | None:
    """The text of the first ``tag`` element (with or without S3's namespace)."""
    root = _root(document)
    if root is None:
        return None
    for element in root.iter():
        if element.tag in (tag, S3_NAMESPACE + tag):
            return element.text
    return None
