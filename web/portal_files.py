"""下载空间: files the consortium office uploads (forms, rules as PDF) and readers download.

Files live in ``downloads/`` of the office's portal folder (``PORTAL_DIR``, else the
instance folder's ``portal/``); the bundled default folder may hold some too, listed but
not deletable here. Only the consortium admin uploads and deletes. A file keeps a safe
form of its own name (Chinese letters stay, path parts and odd characters go), only the
kinds below are taken, and each is served as its kind with ``nosniff``: an upload can
never become a page of this site. ``PORTAL_UPLOAD_MAX`` bytes at most (default 20 MiB).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from flask import current_app

logger = logging.getLogger(__name__)

DEFAULT_UPLOAD_MAX = 20 << 20
# What the office shares: documents, sheets, archives and pictures; never HTML or scripts.
KINDS: dict[str, str] = {
    "pdf": "application/pdf",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt": "application/vnd.ms-powerpoint",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "odt": "application/vnd.oasis.opendocument.text",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "txt": "text/plain; charset=utf-8",
    "zip": "application/zip",
    "png": "image/png",
    "jpg": "image/jpeg",
}
INLINE = {"pdf", "png", "jpg", "txt"}  # the browser shows these itself; others download
_UNSAFE = re.compile(r"[^\w.()（）-]+")
MAX_NAME = 120


@dataclass(frozen=True, slots=True)
class Download:
    name: str
    size: int
    modified: dt.datetime
    own: bool  # in the office's folder (deletable), not a bundled default

    @property
    def kind(self) -> str:
        return self.name.rsplit(".", 1)[-1].lower()


def upload_limit() -> int:
    return int(current_app.config.get("PORTAL_UPLOAD_MAX") or DEFAULT_UPLOAD_MAX)


def safe_name(given: str | None) -> str | None:
    """The name a file is kept under, or None when nothing usable or allowed is left.

    Only the last path part counts (a browser may send ``C:\\forms\\申请表.pdf``); runs of
    anything but letters, digits, ``.-()`` become ``_``; leading dots go (no hidden files,
    no ``..``); the kind must be one of KINDS."""
    if not given:
        return None
    name = unicodedata.normalize("NFKC", given).replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip("._ ")
    if "." not in name:
        return None
    stem, kind = name.rsplit(".", 1)
    stem, kind = stem.strip("._ ")[:MAX_NAME], kind.lower()
    if not stem or kind not in KINDS:
        return None
    return f"{stem}.{kind}"


def listing(folders: list[Path]) -> list[Download]:
    """Every file of the folders' ``downloads/``, the first folder's winning a name."""
    seen: dict[str, Download] = {}
    for index, folder in enumerate(folders):
        place = folder / "downloads"
        if not place.is_dir():
            continue
        for path in sorted(place.iterdir()):
            if path.name in seen or not path.is_file() or safe_name(path.name) != path.name:
                continue  # an odd file put there by hand is neither listed nor served
            info = path.stat()
            seen[path.name] = Download(path.name, info.st_size, dt.datetime.fromtimestamp(
                info.st_mtime), own=index == 0)
    return sorted(seen.values(), key=lambda d: (-d.modified.timestamp(), d.name))


def find(folders: list[Path], name: str) -> Path | None:
    """The file a download link names, only if it is one ``listing`` shows."""
    if safe_name(name) != name:
        return None
    for folder in folders:
        path = folder / "downloads" / name
        if path.is_file():
            return path
    return None


def save(folder: Path, name: str, data: bytes) -> Path:
    """Write an upload atomically into the office's ``downloads/`` (a half-written file is
    never served); an existing file of that name is replaced."""
    place = folder / "downloads"
    place.mkdir(parents=True, exist_ok=True)
    target = place / name
    partial = place / f".{name}.part"
    partial.write_bytes(data)
    os.replace(partial, target)
    logger.info("portal download %s uploaded (%d bytes)", target, len(data))
    return target


def delete(folder: Path, name: str) -> bool:
    if safe_name(name) != name:
        return False
    path = folder / "downloads" / name
    if not path.is_file():
        return False
    path.unlink()
    logger.info("portal download %s deleted", path)
    return True
