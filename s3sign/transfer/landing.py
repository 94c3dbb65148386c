"""Where a pulled file lands, whatever the backend says: a name from the backend becomes a
path inside the target folder or is refused, and the file is written under a temporary
name beside its final one, which it takes only once its bytes are whole and checked.

A compromised backend must not be able to write outside the folder: a name with ``..``, an
absolute path, a Windows drive or UNC form, a backslash or a control character is refused,
and so is a name whose way goes through a symlink (or anything but a folder) inside the
target. A cut-short pull (Ctrl-C, a failed check) leaves no file at a final name.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import threading
from pathlib import Path
from types import TracebackType

from s3sign.keys import PolicyError, check_file_name

_DRIVE = re.compile(r"^[A-Za-z]:")  # C:, or a name a Windows machine would read as a drive
PARTIAL = ".s3sign-partial"  # the end of a temporary name: never a name a pull writes


class UnsafeName(Exception):
    """A name that would land outside the target folder (or on something not a file)."""


class Stopped(Exception):
    """The pull was stopped (Ctrl-C, SIGTERM): no file takes its final name any more."""


def destination(root: Path, name: str) -> Path:
    """The path for the stored file ``name`` under ``root`` (an existing folder);
    ``UnsafeName`` when it would not stay inside it."""
    try:
        check_file_name(name)
    except PolicyError as exc:
        raise UnsafeName(f"{name!a}: {exc.message}") from None
    if _DRIVE.match(name) or name.endswith(PARTIAL):
        raise UnsafeName(f"{name!a}: not a name a pull writes")
    folder = root
    for part in name.split("/")[:-1]:
        folder = folder / part
        try:
            info = os.lstat(folder)
        except FileNotFoundError:
            continue  # created when the file lands, as a folder
        if not stat.S_ISDIR(info.st_mode):  # a symlink (to anywhere) or a file in the way
            raise UnsafeName(f"{name!a}: {folder.relative_to(root)} is not a folder here")
    final = root / name
    try:
        if stat.S_ISDIR(os.lstat(final).st_mode):
            raise UnsafeName(f"{name!a}: a folder of that name is in the way")
    except FileNotFoundError:
        pass
    return final


class Landings:
    """The files one pull is writing. ``stop`` (on Ctrl-C or SIGTERM) is final: no file
    takes its final name after it, and the temporary files are removed at once, also those
    whose download is stuck (its thread may go on writing, into a file no longer named)."""

    def __init__(self) -> None:
        self._open: set[Landing] = set()
        self._lock = threading.Lock()
        self.stopped = False

    def open(self, final: Path, size: int) -> Landing:
        with self._lock:
            if self.stopped:
                raise Stopped
            landing = Landing(final, size, self)
            self._open.add(landing)
        return landing

    def stop(self) -> None:
        with self._lock:
            self.stopped = True
            left, self._open = self._open, set()
        for landing in left:
            landing.partial.unlink(missing_ok=True)

    def _renamed(self, landing: Landing) -> None:
        with self._lock:
            if self.stopped:
                raise Stopped
            os.replace(landing.partial, landing.final)
            self._open.discard(landing)

    def _closed(self, landing: Landing) -> None:
        with self._lock:
            self._open.discard(landing)


class Landing:
    """A file being written: under a temporary name in its final folder (created
    without following symlinks), renamed to ``final`` by ``commit``; removed otherwise.

        with landings.open(final, size) as landing:
            landing.write(offset, data)   # from any thread
            landing.commit()              # only once the bytes were checked
    """

    def __init__(self, final: Path, size: int, owner: Landings | None = None) -> None:
        self.final = final
        self._owner = owner
        _make_folders(final.parent)
        self.partial = final.with_name(f".{final.name}.{secrets.token_hex(4)}{PARTIAL}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        self._fd = os.open(self.partial, flags | getattr(os, "O_CLOEXEC", 0), 0o644)
        self._done = False
        try:
            if size:
                os.ftruncate(self._fd, size)  # the room it needs, or an error now (EFBIG)
        except OSError:
            os.close(self._fd)  # not yet among its owner's files: removed here
            self.partial.unlink(missing_ok=True)
            raise

    def write(self, offset: int, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, offset)
            view, offset = view[written:], offset + written

    def commit(self) -> None:
        """Take the final name (replacing a file there, never following a symlink at that
        name); ``Stopped`` if the pull was stopped meanwhile. Not flushed to disk first (no
        fsync), as cp, curl, aws s3 cp and s5cmd do not: a killed pull leaves no partial
        file at a final name, but a machine that loses power may lose the last seconds'
        files (each fsync cost ~0.5 ms, half of the time of 1,000 small files)."""
        if self._owner is not None:
            self._owner._renamed(self)
        else:
            os.replace(self.partial, self.final)
        self._done = True
        os.close(self._fd)

    def discard(self) -> None:
        if not self._done:
            self._done = True
            os.close(self._fd)
            self.partial.unlink(missing_ok=True)
            if self._owner is not None:
                self._owner._closed(self)

    def __enter__(self) -> Landing:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.discard()  # after commit: nothing to do; else no partial file is left


def _make_folders(folder: Path) -> None:
    """``mkdir -p`` that refuses to go through a symlink or a file (made since
    ``destination`` looked)."""
    missing = []
    while True:
        try:
            info = os.lstat(folder)
        except FileNotFoundError:
            missing.append(folder)
            folder = folder.parent
            continue
        if not stat.S_ISDIR(info.st_mode):
            raise UnsafeName(f"{folder} is not a folder")
        break
    for path in reversed(missing):
        try:
            os.mkdir(path)
        except FileExistsError:  # another download made it meanwhile: a folder, or refused
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                raise UnsafeName(f"{path} is not a folder") from None
