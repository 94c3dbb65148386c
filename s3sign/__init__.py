"""s3sign: move build artifacts straight from workers to S3 with pre-signed URLs.

The public Python API is re-exported here lazily, so that ``import s3sign`` stays
cheap for the command line (cold start is a product feature).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
