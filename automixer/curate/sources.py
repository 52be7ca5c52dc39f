"""Resolve configured sources to concrete files, check them, and fingerprint them for cache keys."""

from __future__ import annotations

import glob as globlib
import re
from pathlib import Path

from automixer.config import PipelineConfig, SourceConfig

SYNTHETIC = "synthetic"


class SourceError(ValueError):
    """A source that cannot be read as configured; the message names the source and what to fix."""


_DEFAULT_NAMES = {"jsonl": re.compile(r"\.jsonl(\.gz|\.zst)?$"), "parquet": re.compile(r"\.parquet$")}


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


def _hf_location(src: SourceConfig) -> tuple[str, bool]:
    """Where an `hf` source loads from, and whether it is a `save_to_disk` folder."""
    path = Path(src.path).expanduser()
    if not path.exists():
        return src.path, False  # a Hub id: served from the local Hugging Face cache
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


def check_source(spec: dict) -> None:
    """Read the first document of a source, raising a clear error on a missing text/id field or no text."""
    from automixer.curate.steps import SourcesReader

    where = repr(str(Path(spec["base"], spec["files"][0]))) if spec["files"] else repr(spec["base"])
    try:
        first = next(iter(SourcesReader([spec]).documents(0, spec)), None)
    except SourceError:
        raise  # already names the source and the field
    except Exception as exc:  # datasets / pyarrow / decoding errors: say which source failed
        raise SourceError(f"source {spec['name']!r}: cannot read {where} as {spec['format']}: {exc}") from exc
    if first is None:
        raise SourceError(
            f"source {spec['name']!r}: no document with a non-empty {spec['text_field']!r} field "
            f"in {where} (check `format` and `text_field`)"
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
