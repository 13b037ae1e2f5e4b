"""Run artifacts (MLflow's `log_artifact`, `log_dict`, checkpoints...): files under
`Settings.artifacts_dir`, one folder per run, `<root>/<run id>/<path>`.

Every path a client names is checked here before the file system sees it (`safe_parts`):
no `..` or `.` segment, no absolute path, no backslash, NUL or control character, no
empty segment, and the same once percent-decoded (a client's `%2e%2e` is refused, not
stored under a name a later decoding might follow). On disk, no component of the path
may be a symbolic link, and the resolved file must lie inside the run's folder, so even
a link planted by someone with access to the disk leads nowhere.

Uploads stream to a temporary file under `<root>/.incoming` (the same file system) and
are renamed into place once whole: a reader never sees half a file, a refused or broken
upload leaves nothing behind; one cut short by a crash is swept by the reaper an hour
later (`sweep_leftovers`). Removing a run's folder renames it into `<root>/.trash`
first (atomic), so a run id that SQLite hands out again never inherits old files.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from anyio import to_thread

MAX_PATH_CHARS = 1024
MAX_SEGMENT_BYTES = 255
# A listing's most entries (MLflow's list has no paging): bounded answers.
MAX_LISTED = 10_000
INCOMING, TRASH = ".incoming", ".trash"
# An upload's temporary file grows as its bytes arrive, so one untouched this long was left
# by a server that died mid-upload; an upload in progress (on any replica) is younger.
LEFTOVER_AGE_S = 3600.0


# What a download may say it is: images the dashboard shows, text shown as text; anything
# else (HTML, SVG, scripts...) is bytes to save, never something a browser renders.
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
TEXT_TYPES = {
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".log": "text/plain; charset=utf-8",
    ".yaml": "text/plain; charset=utf-8",
    ".yml": "text/plain; charset=utf-8",
    ".csv": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
}
# A download is data, not a page: no script, no style, no frame, whatever it holds.
DOWNLOAD_POLICY = "default-src 'none'; img-src 'self'; sandbox"


def safe_media_type(name: str) -> tuple[str, bool]:
    """The content type a file is sent with, and whether it is an image."""
    suffix = Path(name).suffix.lower()
    if suffix in IMAGE_TYPES:
        return IMAGE_TYPES[suffix], True
    return TEXT_TYPES.get(suffix, "application/octet-stream"), False


def download_headers(name: str, *, inline: bool) -> dict[str, str]:
    """Content-Disposition (RFC 6266, the name percent-encoded), nosniff and the policy."""
    kind = "inline" if inline else "attachment"
    ascii_name = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name
    )
    return {
        "Content-Disposition": f'{kind}; filename="{ascii_name}"; '
        f"filename*=UTF-8''{quote(name, safe='')}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": DOWNLOAD_POLICY,
        "Cache-Control": "no-cache",
    }


class BadArtifactPath(ValueError):
    """A path that could leave the run's folder, or that no file may have (→ 400)."""


class ArtifactTooLarge(ValueError):
    """An upload over the per-file limit (→ 413)."""


class ArtifactMissing(LookupError):
    """No such file (→ 404)."""


def _segment_problem(segment: str) -> str | None:
    if segment in ("", ".", ".."):
        return "an empty, '.' or '..' segment"
    if any(ord(char) < 32 or ord(char) == 127 for char in segment):
        return "a control character"
    if "\\" in segment:
        return "a backslash"
    if len(segment.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
        return f"a segment over {MAX_SEGMENT_BYTES} bytes"
    return None


def _path_problem(path: str) -> str | None:
    if path.startswith("/"):
        return "an absolute path"
    if len(path) >= 2 and path[1] == ":":
        return "a drive letter"
    for segment in path.split("/"):
        problem = _segment_problem(segment)
        if problem is not None:
            return problem
    return None


def safe_parts(path: str) -> list[str]:
    """The path's segments, if it is a relative path that stays where it is joined;
    else BadArtifactPath naming what is wrong. Checked as sent and percent-decoded
    (twice: `%252e` is `%2e` is `.`)."""
    if len(path) > MAX_PATH_CHARS:
        raise BadArtifactPath(f"the artifact path is over {MAX_PATH_CHARS} characters")
    decoded = path
    for _ in range(3):
        problem = _path_problem(decoded)
        if problem is not None:
            raise BadArtifactPath(f"invalid artifact path {path[:200]!r}: it has {problem}")
        decoded, before = unquote(decoded), decoded
        if decoded == before:
            break
    return path.split("/")


def _is_link_or_odd(path: Path, *, want_dir: bool) -> bool:
    """Whether `path` exists as something we would not follow or replace: a symbolic
    link, or (for a folder) not a folder."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(mode):
        return True
    return want_dir and not stat.S_ISDIR(mode)


class ArtifactStore:
    """The artifact folders under one root; every method takes checked `parts`."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def run_dir(self, run_id: int) -> Path:
        return self.root / str(run_id)

    def _within(self, run_id: int, parts: list[str], *, want_dir: bool) -> Path:
        """The path for `parts` in the run's folder, checked component by component
        (no links, folders where folders are due) and once resolved."""
        base = self.run_dir(run_id)
        current = base
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            current = current / part
            if _is_link_or_odd(current, want_dir=want_dir or not last):
                raise BadArtifactPath(f"invalid artifact path {'/'.join(parts)!r}")
        resolved = current.resolve()
        if resolved != base.resolve() and base.resolve() not in resolved.parents:
            raise BadArtifactPath(f"invalid artifact path {'/'.join(parts)!r}")
        return current

    async def save(self, run_id: int, parts: list[str], chunks: AsyncIterator[bytes]) -> int:
        """Stream `chunks` into the file at `parts`; its size. Nothing is left behind
        when the stream fails or passes the limit (ArtifactTooLarge)."""
        if not parts:
            raise BadArtifactPath("the artifact path names no file")
        target = self._within(run_id, parts, want_dir=False)
        incoming = self.root / INCOMING
        await to_thread.run_sync(lambda: incoming.mkdir(parents=True, exist_ok=True))
        handle, temporary = tempfile.mkstemp(dir=incoming)
        try:
            size = await self._write(handle, chunks)
            await to_thread.run_sync(self._place, run_id, parts, temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return size

    async def _write(self, handle: int, chunks: AsyncIterator[bytes]) -> int:
        size = 0
        with os.fdopen(handle, "wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > self.max_bytes:
                    raise ArtifactTooLarge(
                        f"the artifact is over the limit of {self.max_bytes} bytes a file "
                        "(MOMENTUM_MAX_ARTIFACT_BYTES)"
                    )
                await to_thread.run_sync(out.write, chunk)
        return size

    def _place(self, run_id: int, parts: list[str], temporary: str, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Checked again now the folders exist: nothing became a link meanwhile.
        self._within(run_id, parts, want_dir=False)
        if target.is_dir():
            raise BadArtifactPath(f"{'/'.join(parts)!r} is a folder of artifacts")
        os.replace(temporary, target)  # replaces a name, never follows it

    def file(self, run_id: int, parts: list[str]) -> Path:
        """The regular file at `parts` (ArtifactMissing when there is none)."""
        path = self._within(run_id, parts, want_dir=False) if parts else None
        if path is None or not stat.S_ISREG(_mode(path)):
            raise ArtifactMissing("/".join(parts))
        return path

    def listing(self, run_id: int, parts: list[str]) -> list[dict[str, Any]]:
        """The folder's entries (MLflow's FileInfo: path relative to the folder, is_dir,
        file_size for files), sorted by name; none when it is no folder."""
        folder = self._within(run_id, parts, want_dir=True)
        if not folder.is_dir():
            return []
        found: list[dict[str, Any]] = []
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda item: item.name)[:MAX_LISTED]:
                if entry.is_symlink():
                    continue
                if entry.is_dir():
                    found.append({"path": entry.name, "is_dir": True})
                elif entry.is_file():
                    size = entry.stat().st_size
                    found.append({"path": entry.name, "is_dir": False, "file_size": size})
        return found

    def walk(self, run_id: int, limit: int = MAX_LISTED) -> tuple[list[dict[str, Any]], bool]:
        """Every file of the run (`path` from the run's folder, `size`), sorted, at most
        `limit`; and whether there were more."""
        base = self.run_dir(run_id)
        found: list[dict[str, Any]] = []
        for folder, folders, files in os.walk(base):
            folders.sort()
            here = Path(folder)
            for name in sorted(files):
                path = here / name
                if path.is_symlink() or not path.is_file():
                    continue
                if len(found) == limit:
                    return sorted(found, key=lambda item: item["path"]), True
                relative = path.relative_to(base).as_posix()
                found.append({"path": relative, "size": path.stat().st_size})
        return sorted(found, key=lambda item: item["path"]), False

    def delete(self, run_id: int, parts: list[str]) -> None:
        """Remove the file or folder at `parts` (nothing there: nothing to do)."""
        path = self._within(run_id, parts, want_dir=False) if parts else self.run_dir(run_id)
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)

    def remove_run(self, run_id: int) -> None:
        """The run's folder, gone: renamed aside at once, then deleted."""
        folder = self.run_dir(run_id)
        if not folder.exists():
            return
        trash = self.root / TRASH
        trash.mkdir(parents=True, exist_ok=True)
        aside = trash / f"{run_id}-{uuid.uuid4().hex}"
        os.replace(folder, aside)
        shutil.rmtree(aside, ignore_errors=True)

    def sweep_leftovers(self, older_than_s: float = LEFTOVER_AGE_S) -> int:
        """Remove what a crash left: partial uploads untouched for `older_than_s`, and
        folders in the trash (a removal cut short); how many entries went."""
        cutoff = time.time() - older_than_s
        removed = 0
        for entry in _entries(self.root / INCOMING):
            if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                Path(entry.path).unlink(missing_ok=True)
                removed += 1
        for entry in _entries(self.root / TRASH):
            shutil.rmtree(entry.path, ignore_errors=True)  # another replica may race us
            removed += 1
        return removed


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except FileNotFoundError:
        return []


def _mode(path: Path) -> int:
    try:
        return os.lstat(path).st_mode
    except FileNotFoundError:
        return 0
