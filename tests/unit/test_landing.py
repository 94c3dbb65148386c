"""Where pulled files land: never outside the target folder, whatever the name; never a
partial file at a final name."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest

from s3sign.transfer.landing import PARTIAL, Landing, Landings, Stopped, UnsafeName, destination


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "a/../../x",
        "/etc/x",
        "C:/Windows/x",
        "c:x",
        "a\\..\\x",
        "a//b",
        "./a",
        "a/",
        "x\n",
        "x\x1b[2J",
        "",
        f"a{PARTIAL}",
    ],
)
def test_a_name_that_would_leave_the_folder_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnsafeName):
        destination(tmp_path, name)


def test_a_way_through_a_symlink_or_a_file_is_refused(tmp_path: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    root = tmp_path / "pull"
    (root / "real").mkdir(parents=True)
    (root / "out").symlink_to(outside, target_is_directory=True)
    (root / "in").symlink_to(root / "real", target_is_directory=True)
    (root / "file").write_text("x")
    for name in ("out/x", "out/deeper/x", "in/x", "file/x"):
        with pytest.raises(UnsafeName):
            destination(root, name)
    with pytest.raises(UnsafeName, match="folder of that name"):
        destination(root, "real")
    assert destination(root, "real/new/ü x.txt") == root / "real/new/ü x.txt"
    assert list(outside.iterdir()) == []


def test_a_landed_file_takes_its_name_only_when_committed(tmp_path: Path) -> None:
    final = destination(tmp_path, "deep/er/file.bin")
    with Landing(final, 10) as landing:
        landing.write(5, b"world")
        landing.write(0, b"hello")
        assert not final.exists()
        landing.commit()
    assert final.read_bytes() == b"helloworld"
    assert [p.name for p in final.parent.iterdir()] == ["file.bin"]  # no partial left


def test_a_failed_landing_leaves_nothing_and_keeps_what_was_there(tmp_path: Path) -> None:
    root = tmp_path / "pull"
    root.mkdir()
    final = root / "kept.txt"
    final.write_bytes(b"the old bytes")

    def land_and_fail() -> None:
        with Landing(final, 3) as landing:
            landing.write(0, b"new")
            raise RuntimeError("the checksum did not match")

    with pytest.raises(RuntimeError):
        land_and_fail()
    assert final.read_bytes() == b"the old bytes"
    assert [p.name for p in root.iterdir()] == ["kept.txt"]


def test_a_symlink_at_the_final_name_is_replaced_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "target.txt"
    target.write_bytes(b"untouched")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    with Landing(destination(tmp_path, "link.txt"), 3) as landing:
        landing.write(0, b"new")
        landing.commit()
    assert not link.is_symlink()
    assert link.read_bytes() == b"new"
    assert target.read_bytes() == b"untouched"
    assert os.stat(link).st_size == 3


def test_downloads_landing_in_one_new_folder_at_once_all_land(tmp_path: Path) -> None:
    """Eight threads land files in the same folders, none of which exists yet: each makes
    what is missing, and a folder another made meanwhile is no error."""
    import threading

    errors: list[BaseException] = []

    def land(index: int) -> None:
        try:
            with Landing(destination(tmp_path, f"a/b/c/f{index}.txt"), 1) as landing:
                landing.write(0, b"x")
                landing.commit()
        except BaseException as exc:
            errors.append(exc)

    for _ in range(20):
        threads = [threading.Thread(target=land, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(list((tmp_path / "a/b/c").iterdir())) == 8
        import shutil

        shutil.rmtree(tmp_path / "a")


def test_a_file_that_cannot_have_its_size_leaves_nothing_and_the_pull_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EFBIG (a file-size limit) or ENOSPC when the room is taken: an error, no temporary
    file, and the pull's other files can still open (it once held the pull's lock)."""
    landings, root = Landings(), tmp_path / "out"
    root.mkdir()
    real = os.ftruncate

    def too_big(fd: int, size: int) -> None:
        if size > 100:
            raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))
        real(fd, size)

    monkeypatch.setattr(os, "ftruncate", too_big)
    opened: list[object] = []

    def both() -> None:
        with pytest.raises(OSError, match="File too large"):
            landings.open(root / "big.bin", 1000)
        opened.append(landings.open(root / "small.bin", 10))

    worker = threading.Thread(target=both, daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "a failed open kept the lock"
    assert len(opened) == 1
    [left] = root.iterdir()  # the small file's, open
    assert left.name.startswith(".small.bin.")


def test_after_stop_nothing_opens_or_lands_and_partials_are_gone(tmp_path: Path) -> None:
    landings, root = Landings(), tmp_path / "out"
    root.mkdir()
    landing = landings.open(root / "a.txt", 3)
    landing.write(0, b"abc")
    landings.stop()
    assert list(root.iterdir()) == []
    with pytest.raises(Stopped):
        landing.commit()
    with pytest.raises(Stopped):
        landings.open(root / "b.txt", 1)
    landing.discard()
    assert list(root.iterdir()) == []
