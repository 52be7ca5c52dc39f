"""Atomic writes, reads and hashing over local paths and fsspec URLs: every stage writes through these helpers.

A local path (or a `file://` URL) is written to a temp file beside the target and renamed onto it. Any other
fsspec URL (`s3://`, `gs://`, `memory://`, ...) is written by finishing a local temp file and uploading it in one
put, which object stores make visible all at once (no reader sees half an object).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePath
from typing import IO, Any

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_FOLDED = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):/(?!/)")  # what pathlib makes of `s3://b/k`: `s3:/b/k`
_LOCAL_PROTOCOLS = {"file", "local"}


class UrlPath(str):
    """An fsspec URL that joins like a Path: `UrlPath("s3://bucket/w") / "shards"` is `s3://bucket/w/shards`."""

    def __truediv__(self, part: str | PurePath) -> UrlPath:
        return UrlPath(self.rstrip("/") + "/" + str(part).strip("/"))

    def joinpath(self, *parts: str) -> UrlPath:
        """This URL with `parts` appended."""
        out = self
        for p in parts:
            out = out / p
        return out

    @property
    def name(self) -> str:
        """The last path component."""
        return self.rstrip("/").rsplit("/", 1)[-1]

    @property
    def parent(self) -> UrlPath:
        """The URL one component up (the protocol's root stays the root)."""
        head, _, _ = self.rstrip("/").rpartition("/")
        return UrlPath(head if not head.endswith(":/") else head + "/")

    def resolve(self) -> UrlPath:
        """Itself: a URL is already absolute."""
        return self

    def as_posix(self) -> str:
        """The URL as a plain string."""
        return str(self)

    def __repr__(self) -> str:
        return f"UrlPath({str(self)!r})"


Location = Path | UrlPath
"""Where a file lives: a local Path, or a UrlPath on an fsspec filesystem."""


def _remote_protocol(proto: str) -> bool:
    from fsspec.registry import known_implementations, registry

    proto = proto.lower()
    return proto not in _LOCAL_PROTOCOLS and (proto in known_implementations or proto in registry)


def location(path: str | PurePath) -> Location:
    """`path` as a Path (local paths, `file://` URLs) or a UrlPath (any other fsspec URL).

    A URL that went through pathlib (which folds `s3://b/k` into `s3:/b/k`) is recognised and unfolded.
    """
    if isinstance(path, UrlPath):
        return path
    text = path.as_posix() if isinstance(path, PurePath) else str(path)
    if m := _URL.match(text):
        return Path(text[m.end() :] or "/") if m.group(1).lower() in _LOCAL_PROTOCOLS else UrlPath(text)
    if (m := _FOLDED.match(text)) and _remote_protocol(m.group(1)):
        return UrlPath(f"{m.group(1)}://{text[m.end() :]}")
    return Path(path)


def is_url(path: str | PurePath) -> bool:
    """Whether `path` names a location on a non-local fsspec filesystem."""
    return isinstance(location(path), UrlPath)


def join(base: str | PurePath, *parts: str) -> Location:
    """`base` joined with `parts`: a Path for local paths, a UrlPath for URLs."""
    out = location(base)
    for part in parts:
        out = out / part
    return out


def filesystem(path: str | PurePath) -> tuple[Any, str]:
    """The fsspec filesystem holding `path`, and the path as that filesystem names it."""
    from fsspec.core import url_to_fs

    return url_to_fs(str(location(path)))


@contextmanager
def atomic_path(path: str | PurePath) -> Iterator[Path]:
    """Yield a local temp path; only if the block succeeds, move it onto `path` (rename, or one upload)."""
    target = location(path)
    if isinstance(target, UrlPath):
        fd, tmp = tempfile.mkstemp(prefix=".automixer-", suffix=".tmp")
        os.close(fd)
        tmp_path = Path(tmp)
        try:
            yield tmp_path
            fs, fs_path = filesystem(target)
            fs.put_file(str(tmp_path), fs_path)
        finally:
            tmp_path.unlink(missing_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | PurePath, text: str) -> Location:
    """Write text to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return location(path)


def write_json_atomic(path: str | PurePath, obj: Any) -> Location:
    """Write an object as indented JSON atomically."""
    return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_parquet_atomic(path: str | PurePath, table: Any) -> Location:
    """Write a pyarrow Table as zstd Parquet atomically."""
    import pyarrow.parquet as pq

    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return location(path)


def open_file(path: str | PurePath, mode: str = "rb", **kwargs: Any) -> IO:
    """Open a local file or an fsspec URL (a context manager, as `open`)."""
    target = location(path)
    if isinstance(target, UrlPath):
        import fsspec

        return fsspec.open(str(target), mode, **kwargs).open()
    return open(target, mode, **kwargs)


def read_text(path: str | PurePath) -> str:
    """The text of a local file or an fsspec URL."""
    with open_file(path, "r", encoding="utf-8") as f:
        return f.read()


def is_file(path: str | PurePath) -> bool:
    """Whether `path` is an existing file."""
    target = location(path)
    if isinstance(target, Path):
        return target.is_file()
    fs, p = filesystem(target)
    return fs.isfile(p)


def is_dir(path: str | PurePath) -> bool:
    """Whether `path` is an existing folder (on object stores: a prefix with objects below it)."""
    target = location(path)
    if isinstance(target, Path):
        return target.is_dir()
    fs, p = filesystem(target)
    return fs.isdir(p)


def glob(folder: str | PurePath, pattern: str) -> list[Location]:
    """Sorted paths matching `pattern` (e.g. `*/*.parquet`) below `folder`, spelled as `folder` is."""
    base = location(folder)
    if isinstance(base, Path):
        return sorted(base.glob(pattern))
    fs, root = filesystem(base)
    root = root.rstrip("/")
    found = [p for p in fs.glob(f"{root}/{pattern}") if p != root]
    return sorted(base / p[len(root) :].lstrip("/") for p in found)


def subfolders(folder: str | PurePath) -> list[Location]:
    """Sorted immediate subfolders of `folder` (none when it does not exist)."""
    base = location(folder)
    if isinstance(base, Path):
        return sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    fs, root = filesystem(base)
    if not fs.isdir(root):
        return []
    entries = fs.ls(root, detail=True)
    return sorted(base / e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries if e["type"] == "directory")


def remove(path: str | PurePath, recursive: bool = False) -> None:
    """Delete a file (or, with `recursive`, a folder and everything below it); missing paths are fine."""
    target = location(path)
    if isinstance(target, Path):
        if target.is_dir() and recursive:
            import shutil

            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)
        return
    fs, p = filesystem(target)
    if fs.exists(p):
        fs.rm(p, recursive=recursive)


def sha256_file(path: str | PurePath, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open_file(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def stable_hash(*parts: str) -> str:
    """A short deterministic hex digest of strings (ids, seeds, cache keys)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def done_marker(folder: str | PurePath) -> Location:
    """The completion marker of a stage's output folder."""
    return join(folder, "_DONE")


def read_structured(path: str | PurePath, what: str, missing_hint: str = "") -> Any:
    """Parse a YAML or JSON file (by suffix), raising FileNotFoundError / ValueError that name the file."""
    import yaml

    target = location(path)
    if not is_file(target):
        raise FileNotFoundError(f"{what} not found: {target}" + (f"; {missing_hint}" if missing_hint else ""))
    is_json = str(target).endswith(".json")
    try:
        text = read_text(target)
        return json.loads(text) if is_json else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"{target} is not valid {'JSON' if is_json else 'YAML'}: {exc}") from exc
