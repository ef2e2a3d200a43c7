"""Attachments (the /attachments API, docs/api.md): files kept under `<root>/<id>/<safe name>` for a
while, their metadata in Redis.

Each attachment is a hash `attachment:{id}` that expires with it. The bytes all attachments may
hold are capped: `attachments:bytes` is the running total, and one script checks the cap and
reserves an upload's bytes in the same step, so two concurrent uploads cannot both pass a cap
only one of them fits under. The ledger (`attachments:ledger`, id -> expires ms, with
`attachments:sizes`) outlives the hash so the bytes can be given back; that happens lazily, at
the start of the next upload's reservation, which also returns the released ids so their files
are deleted. Nothing sweeps on a timer: until an upload comes, expired files stay on disk, still
counted, which keeps the disk within the cap.

The root is a value the caller hands in (like the Redis client); this module never reads the
settings.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from dispatchyard.state import keys, store
from dispatchyard.state.errors import QuotaExceeded, TooLarge
from dispatchyard.state.scripts import Runner, scripts
from dispatchyard.state.store import Redis

# repowire's id format: eight hex digits (`str(uuid4())[:8]`). Every id is checked against this
# before it is joined to a path, so an id can never name anything outside its own directory.
ID_PATTERN = re.compile(r"[0-9a-f]{8}")
DEFAULT_NAME = "file.bin"
# Well under the 255 bytes most file systems allow a name; no real name is longer.
NAME_MAX_BYTES = 200
SUFFIX_MAX_CHARS = 16
# A content type we echo back as a header: ASCII `type/subtype` and printable parameters (a
# header value outside Latin-1, or with a newline, could not be sent at all).
CONTENT_TYPE = re.compile(r"[A-Za-z0-9][\w.+-]*/[\w.+-]+( *;[ -~]*)?", re.ASCII)
CONTENT_TYPE_MAX = 255
# Expired attachments released per upload: enough that a quota full of expired files frees up
# in one step, few enough that the script stays short.
RELEASE_BATCH = 500
COPY_CHUNK = 1 << 20
ID_ATTEMPTS = 8  # 32-bit ids collide rarely; a few fresh draws make it vanishingly rare


def _mb(n: int) -> int:
    return n // 1024 // 1024


def too_large(max_bytes: int) -> TooLarge:
    """The refusal of a file over the per-file limit (repowire's words)."""
    return TooLarge(f"File too large (max {_mb(max_bytes)}MB)")


def _store_full(total_bytes: int, ttl_s: float) -> QuotaExceeded:
    hours = round(ttl_s / 3600)
    return QuotaExceeded(
        f"Attachments directory would exceed cap ({_mb(total_bytes)}MB). "
        f"Wait for the {hours}h TTL to clear older files."
    )


@dataclass(frozen=True)
class Attachment:
    id: str
    path: Path
    filename: str
    size: int
    content_type: str | None
    created_ms: int
    expires_ms: int


def _registered(r: Redis) -> tuple[Runner, Runner]:
    return scripts(r).reserve_attachment, scripts(r).release_attachment


def valid_id(value: str) -> bool:
    return ID_PATTERN.fullmatch(value) is not None


def new_id() -> str:
    return secrets.token_hex(4)


def safe_name(raw: str | None) -> str:
    """The basename of a client's filename, with nothing that could leave the attachment's
    directory or fool a reader: no directories (either slash), no control, format or separator
    characters (NUL, newlines, right-to-left overrides), never `.` or `..`, at most
    NAME_MAX_BYTES of UTF-8 (keeping a short extension)."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    if name in ("", ".", ".."):
        return DEFAULT_NAME
    if len(name.encode()) <= NAME_MAX_BYTES:
        return name
    stem, dot, ext = name.rpartition(".")
    suffix = f".{ext}" if dot and stem and len(ext) < SUFFIX_MAX_CHARS else ""
    stem = name[: len(name) - len(suffix)]
    budget = NAME_MAX_BYTES - len(suffix.encode())
    # Cutting UTF-8 mid-character leaves a partial sequence; drop it rather than guess.
    stem = stem.encode()[:budget].decode(errors="ignore").strip()
    return f"{stem}{suffix}" if stem else DEFAULT_NAME


def clean_content_type(raw: str | None) -> str | None:
    """The client's content type if it is a well-formed one we can send back as a header."""
    if raw and len(raw) <= CONTENT_TYPE_MAX and CONTENT_TYPE.fullmatch(raw):
        return raw
    return None


def _directory(root: Path, attachment_id: str) -> Path:
    if not valid_id(attachment_id):
        raise ValueError(f"not an attachment id: {attachment_id!r}")
    return root / attachment_id


def _discard(root: Path, ids: list[str]) -> None:
    for attachment_id in ids:
        if valid_id(attachment_id):
            shutil.rmtree(_directory(root, attachment_id), ignore_errors=True)


def _write(directory: Path, name: str, source: IO[bytes]) -> None:
    """Copy `source` into `directory/name` in chunks, through a temporary name, so a reader
    never sees a partial file."""
    # A directory left by an attachment whose record is gone (Redis lost it) belongs to no one.
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(mode=0o700, parents=True)
    part = directory / f".part-{secrets.token_hex(8)}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    with os.fdopen(os.open(part, flags, 0o600), "wb") as out:
        shutil.copyfileobj(source, out, COPY_CHUNK)
    os.replace(part, directory / name)


def _measure(source: IO[bytes]) -> int:
    source.seek(0, os.SEEK_END)
    size = source.tell()
    source.seek(0)
    return size


def put(
    r: Redis,
    root: Path,
    source: IO[bytes],
    filename: str | None,
    content_type: str | None,
    *,
    max_bytes: int,
    total_bytes: int,
    ttl_s: float,
    now_ms: int,
) -> Attachment:
    """Keep the (seekable) `source` as a new attachment. TooLarge over `max_bytes`,
    QuotaExceeded when the store would pass `total_bytes` (or the disk is full); either way
    nothing is kept."""
    size = _measure(source)
    if size > max_bytes:
        raise too_large(max_bytes)
    name = safe_name(filename)
    ctype = clean_content_type(content_type)
    ttl_ms = max(1, int(ttl_s * 1000))
    reserve, release = _registered(r)
    expires_ms = now_ms + ttl_ms
    for _ in range(ID_ATTEMPTS):
        attachment_id = new_id()
        directory = _directory(root, attachment_id)
        path = directory / name
        if not path.resolve().is_relative_to(root.resolve()):
            raise ValueError(f"attachment name escapes the store: {name!r}")
        fields: dict[str, str | int] = {
            "id": attachment_id,
            "filename": name,
            "size": size,
            "content_type": ctype or "",
            "created_ms": now_ms,
            "expires_ms": expires_ms,
        }
        flat = [x for pair in fields.items() for x in pair]
        args: list[str | int] = [attachment_id, size, total_bytes, now_ms, expires_ms, ttl_ms]
        args += [RELEASE_BATCH, *flat]
        status, *released = reserve(keys=_keys(attachment_id), args=args)
        _discard(root, [str(x) for x in released])
        if status == "full":
            raise _store_full(total_bytes, ttl_s)
        if status == "ok":
            break
    else:
        raise RuntimeError("no free attachment id")
    try:
        _write(directory, name, source)
    except BaseException as e:
        # Give the bytes back at once: a failed upload must not hold quota for a day.
        release(keys=_keys(attachment_id), args=[attachment_id])
        _discard(root, [attachment_id])
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise QuotaExceeded("Insufficient storage for attachments") from e
        raise
    return Attachment(attachment_id, path, name, size, ctype, now_ms, expires_ms)


def _keys(attachment_id: str) -> list[str]:
    return [
        keys.ATTACHMENTS_BYTES,
        keys.ATTACHMENTS_LEDGER,
        keys.ATTACHMENTS_SIZES,
        keys.attachment(attachment_id),
    ]


def find(r: Redis, root: Path, attachment_id: str, now_ms: int) -> Attachment | None:
    """The live attachment with this id whose file is in place, or None. A malformed id is None
    before Redis or the file system is asked anything."""
    if not valid_id(attachment_id):
        return None
    record = store.hgetall(r, keys.attachment(attachment_id))
    if not record:
        return None
    # The hash expires by Redis time; the record's own expiry follows dispatchyard's clock.
    expires_ms = int(record.get("expires_ms") or 0)
    name = record.get("filename", "")
    if expires_ms <= now_ms or safe_name(name) != name:
        return None
    path = _directory(root, attachment_id) / name
    if not path.is_file():
        return None
    return Attachment(
        attachment_id,
        path,
        name,
        int(record.get("size") or 0),
        record.get("content_type") or None,
        int(record.get("created_ms") or 0),
        expires_ms,
    )


def bytes_reserved(r: Redis) -> int:
    """Bytes the store counts against its cap (expired attachments not yet released
    included)."""
    return int(store.get(r, keys.ATTACHMENTS_BYTES) or 0)
