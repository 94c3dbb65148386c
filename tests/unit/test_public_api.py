"""The public Python API: every name in ``s3sign.__all__`` imports and is what the README
says; ``import s3sign`` alone stays cheap (the command line's cold start)."""

from __future__ import annotations

import inspect
import subprocess
import sys
from datetime import UTC, datetime

import s3sign
from s3sign.credentials import Credentials


def test_every_public_name_imports() -> None:
    for name in s3sign.__all__:
        assert getattr(s3sign, name) is not None, name
    assert inspect.isclass(s3sign.Presigner)
    assert inspect.isclass(s3sign.UploadSigner)
    assert inspect.isfunction(s3sign.push)
    assert s3sign.push.__doc__
    assert issubclass(s3sign.S3SignError, Exception)
    assert isinstance(s3sign.__version__, str)


def test_the_readme_example_signs_a_url() -> None:
    presigner = s3sign.Presigner(
        Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"), "eu-west-1"
    )
    request = s3sign.SignRequest("my-bucket", "logs/build.txt", size=123, expires=600)
    signed = presigner.sign(request, datetime(2026, 1, 1, tzinfo=UTC))
    assert signed.url.startswith("https://my-bucket.s3.eu-west-1.amazonaws.com/logs/build.txt?")
    assert signed.headers == {"Content-Length": "123"}  # what the PUT must send


def test_importing_the_package_imports_no_feature() -> None:
    code = (
        "import sys, s3sign; "
        "print(sorted(m for m in sys.modules if m.startswith(('s3sign.', 'botocore', 'fastapi'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['s3sign.version']"
