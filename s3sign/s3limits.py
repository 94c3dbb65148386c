"""S3's own limits, and the part plan every replica and client computes the same way."""

from __future__ import annotations

import math

MiB = 1024**2
GiB = 1024**3
MAX_SINGLE_PUT = 5 * GiB  # one PUT (and one POST upload); larger objects need multipart
MAX_OBJECT_SIZE = 5 * 1024**4  # the largest object (multipart)
MIN_PART_SIZE = 5 * MiB  # the smallest part, but the last
MAX_PART_SIZE = 5 * GiB
MAX_PARTS = 10_000  # parts per multipart upload
MAX_KEY_BYTES = 1024


def plan_parts(file_size: int, part_size: int) -> tuple[int, int]:
    """(part size, part count): ``part_size`` doubled until at most 10,000 parts.

    A pure function of its inputs, so every replica (and a client that knows
    the server's ``partSize``) plans the same parts.
    """
    while math.ceil(file_size / part_size) > MAX_PARTS:
        part_size *= 2
    return part_size, max(1, math.ceil(file_size / part_size))
