r"""The instance archive: one file per SOP instance, written durably.

A file's path is made of the Study, Series and SOP Instance UIDs, each checked by
:func:`worklist.uids.validate_uid`, so that no hostile UID leaves the archive root. A write goes
to a temporary file in the destination directory, is fsynced, renamed into place, and the
directory is fsynced: after :meth:`Archive.write` returns the file survives a crash or a power
cut. Group commit writes with ``sync=False`` and then makes a whole batch durable at once with
:meth:`Archive.make_durable` (one ``syncfs`` on Linux; per-file and per-directory fsync
elsewhere) before any of it is recorded.

Concurrent writers of the same SOP instance (several listener processes) are serialised by
:meth:`Archive.lock`, an ``flock`` on one of 256 striped lock files under ``.locks/``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from models.errors import Unavailable
from worklist.domain import StoreError, StoreUnavailableError
from worklist.durability import fsync_dir, load_syncfs, make_dirs, syncfs
from worklist.uids import InvalidUIDError, validate_uid

__all__ = [
    "STALE_TMP_S",
    "Archive",
    "ArchiveFullError",
    "InvalidUIDError",
    "StoredFile",
    "validate_uid",
]

logger = logging.getLogger(__name__)

TMP_SUFFIX = ".tmp"

STALE_TMP_S = 600.0
"""Age after which a temporary file of the archive is taken as left by a crashed writer.

Gateways and workers share the archive in a region: one starting up must not remove the file
another is writing this moment."""

_LOCK_STRIPES = 256
_OWN_PATH_RE = re.compile(r"[0-9.]{1,64}/[0-9.]{1,64}/[0-9.]{1,64}(\.[0-9a-f]{1,64})?\.dcm")
_WRITE_CHUNK = 1 << 20  # written, then hashed while still in the CPU's cache


class ArchiveFullError(StoreError, Unavailable):
    """The archive is over its quota, the disk is (nearly) full, or a write hit ENOSPC/EDQUOT."""


@dataclass(frozen=True)
class StoredFile:
    """A file written to the archive."""

    path: str
    """Relative to the archive root, with ``/`` separators."""
    size_bytes: int
    sha256: str


def sha256_hex(data: bytes) -> str:
    """Return the hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


_syncfs = load_syncfs()  # module global: the tests switch it off


def _write_error(relative: str, exc: OSError) -> StoreError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ArchiveFullError(f"no space left writing {relative}: {exc}")
    return StoreUnavailableError(f"cannot write {relative}: {exc}")


def _install(source: Path, dest: Path, new_dirs: list[Path], *, sync: bool) -> None:
    """Rename a complete file into place; with ``sync``, make the new directory entries durable."""
    source.replace(dest)
    if sync:
        for directory in (dest.parent, *new_dirs):
            fsync_dir(directory)


class Archive:
    """The instance archive under one root directory.

    Parameters
    ----------
    root
        The archive directory (created if missing).
    quota_bytes
        Refuse writes that would take the archive past this many bytes (``None``: no quota).
        The caller passes the archive's current size (from the store) to :meth:`check_space`.
    min_free_bytes
        Refuse writes that would leave less than this free on the filesystem.
    """

    def __init__(
        self, root: Path, *, quota_bytes: int | None = None, min_free_bytes: int = 0
    ) -> None:
        self.root = Path(root).resolve()
        self.quota_bytes = quota_bytes
        self.min_free_bytes = min_free_bytes
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / ".locks").mkdir(exist_ok=True)

    def relative_path(
        self, study_uid: str, series_uid: str, sop_uid: str, *, variant: str = ""
    ) -> str:
        """Return the archive path of an instance, after validating its UIDs.

        Parameters
        ----------
        study_uid, series_uid, sop_uid
            The instance's UIDs.
        variant
            An optional suffix (a checksum) for a replacement written beside the original.

        Returns
        -------
        str
            ``STUDY/SERIES/SOP.dcm`` (or ``SOP.VARIANT.dcm``), relative to the root.

        Raises
        ------
        InvalidUIDError
            If a UID is not valid.
        """
        study = validate_uid(study_uid, "Study Instance UID")
        series = validate_uid(series_uid, "Series Instance UID")
        sop = validate_uid(sop_uid, "SOP Instance UID")
        if variant and not re.fullmatch(r"[0-9a-f]{1,64}", variant):
            raise InvalidUIDError(f"invalid archive variant {variant!r}")
        name = f"{sop}.{variant}.dcm" if variant else f"{sop}.dcm"
        return f"{study}/{series}/{name}"

    def _own(self, relative: str) -> Path:
        """Return the path of ``relative`` when it has the form :meth:`relative_path` makes.

        Its parts are validated UIDs (digits and dots) and one file name, so it cannot leave
        the root and needs no ``resolve()`` (a system call per path component); anything else
        goes through :meth:`absolute`.
        """
        if _OWN_PATH_RE.fullmatch(relative) and ".." not in relative:
            return self.root / relative
        return self.absolute(relative)

    def absolute(self, relative: str) -> Path:
        """Return the absolute path of a relative archive path, refusing any escape."""
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root):
            raise InvalidUIDError(f"path {relative!r} leaves the archive")
        return path

    def check_space(self, incoming: int, used_bytes: int | None = None) -> None:
        """Raise :class:`ArchiveFullError` if ``incoming`` more bytes do not fit.

        Parameters
        ----------
        incoming
            Size of the file about to be written.
        used_bytes
            The archive's current size (needed only when a quota is set).
        """
        quota = self.quota_bytes
        if quota is not None and used_bytes is not None and used_bytes + incoming > quota:
            raise ArchiveFullError(
                f"archive quota exceeded: {used_bytes} + {incoming} bytes > quota {quota} bytes"
            )
        free = shutil.disk_usage(self.root).free
        if free - incoming < self.min_free_bytes:
            raise ArchiveFullError(
                f"disk nearly full: {free} bytes free, {incoming} incoming, "
                f"minimum free {self.min_free_bytes} bytes"
            )

    @contextlib.contextmanager
    def lock(self, sop_uid: str) -> Iterator[None]:
        """Hold an exclusive cross-process lock for one SOP Instance UID.

        The lock is one of 256 striped ``flock`` files, released when the block ends or the
        process dies.
        """
        stripe = int(hashlib.blake2b(sop_uid.encode(), digest_size=2).hexdigest(), 16)
        path = self.root / ".locks" / f"{stripe % _LOCK_STRIPES:02x}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def exists(self, relative: str) -> bool:
        """Whether a file is at ``relative`` (a path from :meth:`relative_path`)."""
        return self._own(relative).exists()

    def write(
        self, relative: str, data: bytes, sha256: str | None = None, *, sync: bool = True
    ) -> StoredFile:
        """Write ``data`` durably at ``relative`` (replacing any file there).

        The SHA-256 is computed while writing, one chunk at a time, as each chunk is handed
        to the kernel (the bytes are read once), unless the caller passes it.

        Parameters
        ----------
        relative
            A path from :meth:`relative_path`.
        data
            The whole file.
        sha256
            Its SHA-256 when the caller has it already (computed while writing otherwise).
        sync
            ``False`` skips the fsyncs: the file is NOT durable on return, and the caller must
            pass it to :meth:`make_durable` before relying on it (group commit).

        Returns
        -------
        StoredFile
            Its path, size and SHA-256.

        Raises
        ------
        ArchiveFullError
            If the filesystem is full or over its quota (ENOSPC, EDQUOT).
        StoreUnavailableError
            On any other I/O error.
        """
        dest = self._own(relative)
        directory = dest.parent
        tmp = directory / f".{dest.name}.{os.getpid()}{TMP_SUFFIX}"
        digest = None if sha256 else hashlib.sha256()
        try:
            new_dirs = make_dirs(directory)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view[:_WRITE_CHUNK])
                    if digest is not None:  # what was just written, while in the CPU's cache
                        digest.update(view[:written])
                    view = view[written:]
                if sync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            _install(tmp, dest, new_dirs, sync=sync)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise _write_error(relative, exc) from exc
        checksum = sha256 or (digest.hexdigest() if digest is not None else sha256_hex(data))
        return StoredFile(path=relative, size_bytes=len(data), sha256=checksum)

    def adopt(
        self, relative: str, source: Path, sha256: str, size_bytes: int, *, sync: bool = True
    ) -> StoredFile:
        """Move a complete file already in the archive's filesystem to ``relative`` (no copy).

        A listener process receives each dataset to a file under the archive root
        (:mod:`dicom_gateway.receiving`); renaming that file into place replaces writing its
        bytes again. Like :meth:`write`, the file is durable on return unless ``sync`` is
        false (then :meth:`make_durable` must follow), and any file at ``relative`` is replaced.

        Parameters
        ----------
        relative
            A path from :meth:`relative_path`.
        source
            The file, on the same filesystem (it is gone afterwards).
        sha256, size_bytes
            Its checksum and size, computed by the caller from the bytes it checked.
        sync
            ``False``: not durable on return (group commit).

        Returns
        -------
        StoredFile
            Its path, size and SHA-256.

        Raises
        ------
        ArchiveFullError
            If the filesystem is full (ENOSPC, EDQUOT).
        StoreUnavailableError
            On any other I/O error, or when ``source`` is on another filesystem.
        """
        dest = self._own(relative)
        directory = dest.parent
        try:
            new_dirs = make_dirs(directory)
            fd = os.open(source, os.O_RDONLY)
            try:
                os.fchmod(fd, 0o644)  # as write() creates them (a temporary file is 0600)
                if sync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            _install(source, dest, new_dirs, sync=sync)
        except OSError as exc:
            raise _write_error(relative, exc) from exc
        return StoredFile(path=relative, size_bytes=size_bytes, sha256=sha256)

    def make_durable(self, relatives: list[str]) -> None:
        """Make files written with ``sync=False`` durable, with their directory entries.

        On Linux one ``syncfs(2)`` of the archive's filesystem does it for every file at once:
        it writes back all dirty data and metadata of that filesystem (the files, the renames,
        the new directories) and waits for the journal commit and the device cache flush, and
        (Linux >= 5.8) reports any write-back error. Elsewhere each file is fsynced, then each
        directory between it and the root.

        Parameters
        ----------
        relatives
            Paths from :meth:`relative_path` written with ``sync=False``.

        Raises
        ------
        ArchiveFullError
            On ENOSPC or EDQUOT.
        StoreUnavailableError
            On any other I/O error.
        """
        if not relatives:
            return
        try:
            if _syncfs is not None:
                syncfs(_syncfs, self.root)
                return
            directories: set[Path] = set()
            for relative in relatives:
                path = self.absolute(relative)
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
                directories.update(p for p in path.parents if p.is_relative_to(self.root))
            for directory in sorted(directories, key=lambda d: -len(d.parts)):
                fsync_dir(directory)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise ArchiveFullError(f"no space left syncing the archive: {exc}") from exc
            raise StoreUnavailableError(f"cannot sync the archive: {exc}") from exc

    def read(self, relative: str) -> bytes:
        """Return the bytes of an archived file."""
        return self.absolute(relative).read_bytes()

    def remove(self, relative: str) -> None:
        """Remove an archived file if present (used after a replacement is committed)."""
        with contextlib.suppress(FileNotFoundError):
            self.absolute(relative).unlink()

    def sweep_temporary(self, older_than_s: float = 0.0) -> int:
        """Remove temporary files left by a crashed writer; return how many.

        Parameters
        ----------
        older_than_s
            Only files not modified for this long. A writer renames its temporary file within
            one call, so an old one is an interrupted write; a recent one may belong to a
            writer still running, such as another gateway on a shared archive
            (:data:`STALE_TMP_S`). 0 removes every one: only when no writer can be running.

        Returns
        -------
        int
            The files removed.
        """
        removed = 0
        cutoff = time.time() - older_than_s
        for tmp in self.root.rglob(f".*{TMP_SUFFIX}"):
            with contextlib.suppress(OSError):
                if older_than_s <= 0 or tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
                    removed += 1
        if removed:
            logger.warning("removed %d temporary file(s) left by an interrupted write", removed)
        return removed
