"""``python -m s3sign``: the same entry point as the ``s3sign`` console script."""

from __future__ import annotations

from s3sign.cli import main

if __name__ == "__main__":
    main()
