"""Resolve configured sources to concrete files, check them, and fingerprint them for cache keys."""

from __future__ import annotations

import glob as globlib
import os
import re
from collections import Counter
from pathlib import Path

from automixer.config import PipelineConfig, SourceConfig
from automixer.curate.readers import DEFAULT_MAX_DOC_BYTES, Problem

SYNTHETIC = "synthetic"


class SourceError(ValueError):
    """A source that cannot be read as configured; the message names the source and what to fix."""


_DEFAULT_NAMES = {
    "jsonl": re.compile(r"\.jsonl(\.gz|\.zst)?$"),
    "parquet": re.compile(r"\.parquet$"),
    "warc": re.compile(r"\.warc(\.wet)?(\.gz)?$"),
}
CHECK_BUDGET = 1000
"""The pre-flight check gives up on a source after this many skipped records without one usable document."""
_OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
_DATA_SUFFIXES = (".json", ".jsonl", ".parquet", ".arrow", ".csv", ".gz", ".zst", ".warc")


def _split_glob(path: str) -> tuple[Path, str]:
    parts = Path(path).parts
    first = next(i for i, p in enumerate(parts) if globlib.has_magic(p))
    return Path(*parts[:first]) if first else Path("."), str(Path(*parts[first:]))


def _disk_files(src: SourceConfig) -> tuple[Path, list[str]]:
    """The base folder and sorted relative file paths of a jsonl/parquet source."""
    path = Path(src.path).expanduser()
    if globlib.has_magic(src.path):
        base, pattern = _split_glob(str(path))
        files = [p for p in base.glob(pattern) if p.is_file()]
        where = f"{src.path!r}"
    elif path.is_file():
        base, files, where = path.parent, [path], f"{src.path!r}"
    elif path.is_dir():
        base = path
        if src.glob:
            files = [p for p in path.glob(src.glob) if p.is_file()]
            where = f"glob {src.glob!r} under {src.path!r}"
        else:
            files = [p for p in path.iterdir() if p.is_file() and _DEFAULT_NAMES[src.format].search(p.name)]
            where = f"*.{src.format} files in {src.path!r} (set `glob` to choose others)"
    else:
        raise FileNotFoundError(f"source {src.name!r}: path {src.path!r} does not exist (check `sources[].path`)")
    if not files:
        raise FileNotFoundError(f"source {src.name!r}: no input files match {where}")
    base = base.resolve()
    return base, sorted(p.resolve().relative_to(base).as_posix() for p in files)


def hub_offline() -> bool:
    """Whether the environment forbids Hugging Face Hub access (`HF_HUB_OFFLINE` or `HF_DATASETS_OFFLINE`)."""
    return any(os.environ.get(v, "").strip().upper() in ("1", "ON", "YES", "TRUE") for v in _OFFLINE_VARS)


def offline_hub_error(name: str, hub_id: str) -> SourceError:
    """The error for a Hub id while offline: says how to point the source at local files instead."""
    local = f"/data/{hub_id.rsplit('/', 1)[-1]}"
    return SourceError(
        f"source {name!r}: {hub_id!r} is not a local path, so it would be a Hugging Face Hub id, but the Hub is "
        f"offline here ({' / '.join(_OFFLINE_VARS)} is set) and curation never downloads. Point `path` at local "
        f"files instead: on a machine with network run `datasets.load_dataset({hub_id!r}, split='train')"
        f".save_to_disk({local!r})`, copy the folder here and set `path: {local}` (format: hf); or download "
        f"the dataset's Parquet/JSONL files (`huggingface-cli download {hub_id} --repo-type dataset --local-dir "
        f"{local}`) and use `format: parquet` or `format: jsonl` with that folder as `path`."
    )


def _hf_location(src: SourceConfig) -> tuple[str, bool]:
    """Where an `hf` source loads from, and whether it is a `save_to_disk` folder."""
    path = Path(src.path).expanduser()
    if not path.exists():
        if src.path.startswith(("/", ".", "~")) or src.path.count("/") > 1 or src.path.endswith(_DATA_SUFFIXES):
            raise FileNotFoundError(f"source {src.name!r}: path {src.path!r} does not exist (check `sources[].path`)")
        if hub_offline():
            raise offline_hub_error(src.name, src.path)
        return src.path, False  # a Hub id, read online
    if (path / "dataset_dict.json").is_file():
        split_dir = path / src.split
        if not split_dir.is_dir():
            splits = sorted(p.name for p in path.iterdir() if p.is_dir())
            raise SourceError(f"source {src.name!r}: split {src.split!r} not in {src.path!r}; available: {splits}")
        return str(split_dir.resolve()), True
    if (path / "state.json").is_file():
        return str(path.resolve()), True
    return str(path.resolve()), False


def _fingerprint(base: Path, files: list[str]) -> list[list]:
    out = []
    for rel in files:
        st = (base / rel).stat()
        out.append([rel, st.st_size, st.st_mtime_ns])
    return out


def resolve_source(src: SourceConfig) -> dict:
    """A picklable reading spec of one source (files, fields, limit) plus a fingerprint of its inputs."""
    spec = {
        "name": src.name,
        "domain": src.domain,
        "format": src.format,
        "text_field": src.text_field,
        "id_field": src.id_field,
        "limit": src.limit,
        "split": src.split,
        "load_from_disk": False,
        "files": [],
        "max_doc_bytes": getattr(src, "max_doc_bytes", DEFAULT_MAX_DOC_BYTES),
        "html": bool(getattr(src, "html", False)),
    }
    if src.format == "hf":
        spec["base"], spec["load_from_disk"] = _hf_location(src)
        local = Path(spec["base"])
        if local.is_dir():
            rels = sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file())
            spec["fingerprint"] = _fingerprint(local, rels)
        else:
            spec["fingerprint"] = [spec["base"]]
    else:
        base, files = _disk_files(src)
        spec.update(base=str(base), files=files, fingerprint=_fingerprint(base, files))
    return spec


class _Budget(Exception):
    """Raised inside a reader when the pre-flight check has seen enough skipped records."""


_HINTS = {
    "missing_text_field": "Set `text_field` in the source config.",
    "bad_schema": "Set `text_field` (and `id_field`) to existing columns.",
    "missing_id_field": "Fix or drop `id_field` in the source config.",
    "bad_json": "Check `format` and that the files are JSON Lines.",
    "invalid_utf8": "The files are not UTF-8 JSON Lines; check `format`.",
}


def check_source(spec: dict) -> None:
    """Fail before any work unless the source yields a usable document before CHECK_BUDGET skipped records."""
    from automixer.curate.source_reader import source_records

    problems: list[Problem] = []

    def report(problem: Problem) -> None:
        problems.append(problem)
        if len(problems) >= CHECK_BUDGET:
            raise _Budget

    where = repr(str(Path(spec["base"], spec["files"][0]))) if spec["files"] else repr(spec["base"])
    try:
        for _ in source_records(spec, report):
            return
    except _Budget:
        pass
    except SourceError:
        raise
    except Exception as exc:  # a reader bug or an unexpected library error: say which source failed
        raise SourceError(f"source {spec['name']!r}: cannot read {where} as {spec['format']}: {exc}") from exc
    if not problems:
        raise SourceError(f"source {spec['name']!r}: no document in {where} (check `format` and `path`)")
    reason, count = Counter(p.reason for p in problems).most_common(1)[0]
    first = next(p for p in problems if p.reason == reason)
    at = f"{first.file}:{first.line}" if first.line is not None else first.file
    raise SourceError(
        f"source {spec['name']!r}: no usable document; {count} of {len(problems)} skipped records are "
        f"{reason!r}, first at {at}: {first.detail}. {_HINTS.get(reason, 'Check `format`, `path` and the files.')}"
    )


def resolve_sources(cfg: PipelineConfig, check: bool = True) -> list[dict]:
    """Resolve and (optionally) check every source of the config, in config order."""
    specs = []
    for src in cfg.sources:
        if src.domain == SYNTHETIC:
            raise SourceError(
                f"source {src.name!r}: domain {SYNTHETIC!r} is produced by synth, not curation; use another domain"
            )
        spec = resolve_source(src)
        if check:
            check_source(spec)
        specs.append(spec)
    return specs
