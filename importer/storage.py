"""Uploaded files on disk: server-chosen names under the upload directory, size-limited writes."""

import contextlib
import hashlib
import re
import unicodedata
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiofiles
import aiofiles.os

from core.errors import BadUserInput
from db.models import FILE_NAME_MAX

CHUNK_BYTES = 1024 * 1024
DEFAULT_FILE_NAME = "upload.csv"
_UNSAFE = re.compile(r"[^\w .()+,-]+")
_SPACES = re.compile(r"\s+")


def sanitize_file_name(name: str | None) -> str:
    """The original name reduced to a safe label: no directories, control or odd characters.

    It is only ever shown (job, report file name); the file on disk has a generated name.
    """
    base = re.split(r"[/\\]", name or "")[-1]
    base = unicodedata.normalize("NFC", base)
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    base = _SPACES.sub(" ", _UNSAFE.sub("_", base)).strip(" .")
    if not base:
        return DEFAULT_FILE_NAME
    if len(base) > FILE_NAME_MAX:
        _stem, dot, ext = base.rpartition(".")
        keep = ("." + ext) if dot and len(ext) <= 10 else ""
        base = base[: FILE_NAME_MAX - len(keep)] + keep
    return base


@dataclass(frozen=True, slots=True)
class StoredFile:
    job_id: str
    stored_name: str
    size_bytes: int
    sha256: str  # of the bytes, hex: the duplicate guard compares it


def stored_path(upload_dir: Path, stored_name: str) -> Path:
    """Where a job's file lives. Stored names are generated, so they never leave the directory."""
    if not re.fullmatch(r"[0-9a-f-]{36}\.csv", stored_name):
        raise ValueError(f"not a stored upload name: {stored_name!r}")
    return upload_dir / stored_name


async def store_upload(
    chunks: AsyncIterator[bytes], *, upload_dir: Path, max_bytes: int
) -> StoredFile:
    """Stream chunks to a new file, enforcing `max_bytes` as they arrive.

    An over-limit or interrupted upload leaves no file behind.
    """
    job_id = str(uuid.uuid4())
    stored_name = f"{job_id}.csv"
    await aiofiles.os.makedirs(upload_dir, exist_ok=True)
    final = stored_path(upload_dir, stored_name)
    partial = final.with_suffix(".part")
    size = 0
    digest = hashlib.sha256()
    try:
        async with aiofiles.open(partial, "xb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise BadUserInput(
                        f"The file is larger than the limit of {max_bytes} bytes.", field="file"
                    )
                digest.update(chunk)
                await out.write(chunk)
        await aiofiles.os.replace(partial, final)
    except BaseException:
        await remove_quietly(partial)
        raise
    return StoredFile(
        job_id=job_id, stored_name=stored_name, size_bytes=size, sha256=digest.hexdigest()
    )


async def remove_quietly(path: Path) -> None:
    """Delete a file if it is there."""
    with contextlib.suppress(FileNotFoundError):
        await aiofiles.os.remove(path)


async def file_chunks(path: Path) -> AsyncIterator[bytes]:
    """A local file in chunks (the CLI's import goes through `store_upload` too)."""
    async with aiofiles.open(path, "rb") as source:
        while chunk := await source.read(CHUNK_BYTES):
            yield chunk
