"""Fault-tolerant readers: JSONL, Parquet, WARC and HF datasets yield records; bad input becomes a counted Problem.

A reader never raises on bad input. Each skipped piece is reported once as a `Problem` naming its reason, the
file and the line (JSONL, 1-based), row (Parquet / HF, 0-based) or record (WARC, 0-based) it came from.
Invalid UTF-8 is never repaired: the line or row is skipped and counted (`invalid_utf8`), so no replacement
characters reach the shards. WARC payloads are decoded as UTF-8, else their declared or detected charset; one
that no charset decodes is skipped (`warc_undecodable`).
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

DEFAULT_MAX_DOC_BYTES = 10 * 2**20
"""Documents (JSONL lines, Parquet/HF text values, WARC payloads) larger than this are skipped: `doc_too_large`."""

HTML_TYPES = ("text/html", "application/xhtml+xml")


@dataclass(frozen=True)
class Problem:
    """One piece of input a reader skipped: why, in which file, at which line/row/record, and details."""

    reason: str
    file: str
    line: int | None = None
    detail: str = ""

    def to_json(self) -> dict:
        """A JSON-ready dict (the `reader_errors` line format)."""
        return asdict(self)


@dataclass
class Record:
    """One raw document: its text (or HTML when `html`), 0-based position in its file, id value and provenance."""

    text: str
    pos: int
    id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    html: bool = False


Report = Callable[[Problem], None]


def _open(path: Path) -> IO[bytes]:
    """A binary stream of a file, decompressing .gz and .zst by suffix."""
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    if path.suffix == ".zst":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True)
    return open(path, "rb")


def _read_errors() -> tuple[type[BaseException], ...]:
    """Exceptions a truncated or corrupt (compressed) stream raises while reading."""
    errors: tuple[type[BaseException], ...] = (OSError, EOFError, zlib.error, ValueError)
    try:
        import zstandard

        errors += (zstandard.ZstdError,)
    except ImportError:  # pragma: no cover - zstandard ships with datatrove[io]
        pass
    return errors


def _corruption(path: Path, exc: BaseException) -> str:
    """The reason a decompression/read error stands for."""
    if isinstance(exc, EOFError):
        return {".gz": "truncated_gzip", ".zst": "truncated_zstd"}.get(path.suffix, "truncated_file")
    if isinstance(exc, gzip.BadGzipFile | zlib.error):
        return "bad_gzip"
    if path.suffix == ".zst" and not isinstance(exc, OSError):
        return "bad_zstd"
    return "unreadable_file"


def _lines(f: IO[bytes], max_bytes: int) -> Iterator[tuple[int, bytes | None, int]]:
    """(1-based line number, content or None when longer than `max_bytes`, size); holds at most ~max_bytes + 1 MB."""
    n, piece_size = 0, min(max_bytes + 1, 1 << 20)
    while piece := f.readline(piece_size):
        n += 1
        pieces, size = [piece], len(piece)
        while not piece.endswith(b"\n") and size <= max_bytes and (piece := f.readline(piece_size)):
            pieces.append(piece)
            size += len(piece)
        content = size - pieces[-1].endswith(b"\n")
        if content <= max_bytes:
            yield n, pieces[0] if len(pieces) == 1 else b"".join(pieces), size
            continue
        pieces.clear()
        while not piece.endswith(b"\n") and (piece := f.readline(piece_size)):
            size += len(piece)  # drain the rest of the oversized line piece by piece
        yield n, None, size


def _text_of(rec: Any, text_field: str, id_field: str | None, where: tuple[str, int], report: Report) -> str | None:
    """The non-empty text of a parsed record, or None after reporting why it has none."""
    file, line = where
    if not isinstance(rec, dict):
        report(Problem("bad_json", file, line, f"a JSON {type(rec).__name__}, not an object"))
        return None
    text = rec.get(text_field)
    if text is None:
        fields = sorted(rec)
        report(Problem("missing_text_field", file, line, f"no text field {text_field!r}; fields present: {fields}"))
        return None
    if not isinstance(text, str):
        report(Problem("bad_text_type", file, line, f"field {text_field!r} is a {type(text).__name__}, not text"))
        return None
    if not text.strip():
        report(Problem("empty_text", file, line, f"field {text_field!r} is empty"))
        return None
    if id_field and rec.get(id_field) is None:
        report(Problem("missing_id_field", file, line, f"no id field {id_field!r}; fields present: {sorted(rec)}"))
        return None
    return text


def _record(text: str, pos: int, rec: dict, id_field: str | None, meta: dict) -> Record:
    url = rec.get("url")
    if isinstance(url, str) and url:
        meta["url"] = url
    return Record(text, pos, str(rec[id_field]) if id_field else None, meta)


def read_jsonl(
    path: str | Path, text_field: str, id_field: str | None, report: Report, max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES
) -> Iterator[Record]:
    """Records of a JSONL file (plain, .gz or .zst); bad lines are reported and skipped, never raised."""
    import orjson

    path = Path(path)
    file, n_lines = str(path), 0
    try:
        with _open(path) as f:
            for n_lines, line, size in _lines(f, max_doc_bytes):
                if line is None:
                    report(Problem("doc_too_large", file, n_lines, f"{size} bytes > max_doc_bytes={max_doc_bytes}"))
                    continue
                if n_lines == 1 and line.startswith(b"\xef\xbb\xbf"):
                    line = line[3:]  # a UTF-8 byte-order mark some editors write
                if not line.strip():
                    continue
                try:
                    rec = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    try:
                        line.decode("utf-8")
                    except UnicodeDecodeError as uexc:
                        report(Problem("invalid_utf8", file, n_lines, f"byte {uexc.start}: {uexc.reason}"))
                    else:
                        report(Problem("bad_json", file, n_lines, str(exc)))
                    continue
                text = _text_of(rec, text_field, id_field, (file, n_lines), report)
                if text is not None:
                    yield _record(text, n_lines - 1, rec, id_field, {"path": file, "line": n_lines})
    except _read_errors() as exc:  # truncated / corrupt compressed stream
        report(Problem(_corruption(path, exc), file, n_lines + 1, f"{type(exc).__name__}: {exc}; kept lines before"))
        return
    if n_lines == 0:
        report(Problem("empty_file", file, None, "no lines"))


def _parquet_columns(schema: Any, text_field: str, id_field: str | None) -> tuple[list[str], str]:
    """Columns to read, or ([], why) when the schema cannot serve the configured fields."""
    import pyarrow as pa

    names = list(schema.names)
    if text_field not in names:
        return [], f"no text field {text_field!r}; fields present: {names}"
    kind = schema.field(text_field).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)):
        return [], f"column {text_field!r} is {kind}, not a string"
    if id_field and id_field not in names:
        return [], f"no id field {id_field!r}; fields present: {names}"
    cols = [text_field] + [c for c in (id_field, "url") if c and c in names and c != text_field]
    return cols, ""


def _arrow_rows(
    batches: Iterator[Any], fields: tuple[str, str | None], cols: list[str], file: str, report: Report, max_bytes: int
) -> Iterator[Record]:
    """Records of Arrow record batches; rows are numbered from 0 across batches."""
    import pyarrow.compute as pc

    (text_field, id_field), row = fields, 0
    for batch in batches:
        sizes = pc.binary_length(batch.column(text_field).cast("large_string")).to_pylist()
        columns = {c: batch.column(c) for c in cols}
        for i, size in enumerate(sizes):
            where = (file, row + i)
            if size is not None and size > max_bytes:
                report(Problem("doc_too_large", file, row + i, f"{size} bytes > max_doc_bytes={max_bytes}"))
                continue
            try:
                rec = {c: columns[c][i].as_py() for c in cols}
            except UnicodeDecodeError as exc:
                report(Problem("invalid_utf8", file, row + i, f"byte {exc.start}: {exc.reason}"))
                continue
            text = _text_of(rec, text_field, id_field, where, report)
            if text is not None:
                yield _record(text, row + i, rec, id_field, {"path": file, "row": row + i})
        row += len(sizes)


def read_parquet(
    path: str | Path, text_field: str, id_field: str | None, report: Report, max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES
) -> Iterator[Record]:
    """Records of a Parquet file; a file without the text column is reported once (`bad_schema`) and skipped."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    file = str(path)
    try:
        pf = pq.ParquetFile(file)
    except (OSError, pa.ArrowException) as exc:
        reason = "empty_file" if Path(file).stat().st_size == 0 else "bad_parquet"
        report(Problem(reason, file, None, str(exc)))
        return
    with pf:
        cols, why = _parquet_columns(pf.schema_arrow, text_field, id_field)
        if not cols:
            report(Problem("bad_schema", file, None, why))
            return
        if pf.metadata.num_rows == 0:
            report(Problem("empty_file", file, None, "no rows"))
            return
        batches = pf.iter_batches(batch_size=256, columns=cols)
        rows = _arrow_rows(batches, (text_field, id_field), cols, file, report, max_doc_bytes)
        try:
            yield from rows
        except (OSError, pa.ArrowException) as exc:
            report(Problem("bad_parquet", file, None, f"stopped mid-file: {exc}"))


def _payload_type(record: Any) -> str:
    """The payload MIME type a WARC record declares (identified type, else HTTP Content-Type), or ''."""
    mime = record.rec_headers.get_header("WARC-Identified-Payload-Type")
    if not mime and record.http_headers is not None:
        mime = record.http_headers.get_header("Content-Type")
    if not mime and record.rec_type == "conversion":
        mime = record.rec_headers.get_header("Content-Type")
    return (mime or "").split(";")[0].strip().lower()


def _declared_charset(record: Any) -> str | None:
    ctype = record.http_headers.get_header("Content-Type", "") if record.http_headers is not None else ""
    for part in ctype.split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return value.strip().strip("\"'")
    return None


def _decode(payload: bytes, declared: str | None) -> str | None:
    """Payload text: UTF-8, else the declared charset, else the detected one; None when none decodes cleanly."""
    candidates: list[str | None] = ["utf-8", declared]
    try:
        import cchardet

        candidates.append(cchardet.detect(payload)["encoding"])
    except ImportError:  # pragma: no cover - cchardet ships with datatrove[processing]
        pass
    for charset in candidates:
        if charset:
            try:
                return payload.decode(charset)
            except (UnicodeDecodeError, LookupError):
                continue
    return None


def _looks_html(payload: bytes) -> bool:
    head = payload[:2048].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head


def _warc_skip(record: Any, kind: str, mime: str, url: str) -> tuple[str, str] | None:
    """(reason, detail) when a response/conversion record is not a text document we read."""
    if kind == "conversion":
        return None if mime in ("", "text/plain") else ("warc_not_text", f"{mime} {url}")
    status = record.http_headers.get_statuscode() if record.http_headers is not None else None
    if status and not status.startswith("2"):
        return "warc_http_status", f"HTTP {status} {url}"
    if mime and mime not in HTML_TYPES:
        return "warc_not_html", f"{mime} {url}"
    return None


def _warc_record(record: Any, ri: int, file: str, report: Report, max_bytes: int) -> Record | None:
    """The document of one WARC record (HTML response or WET conversion), or None (reported when a skip)."""
    kind = record.rec_type
    url = record.rec_headers.get_header("WARC-Target-URI") or ""
    if kind == "revisit":
        report(Problem("warc_revisit", file, ri, f"revisit of {url} (no payload)"))
        return None
    if kind not in ("response", "conversion"):
        return None  # warcinfo, request, metadata, resource: not documents
    mime = _payload_type(record)
    if skip := _warc_skip(record, kind, mime, url):
        report(Problem(skip[0], file, ri, skip[1]))
        return None
    payload = record.content_stream().read(max_bytes + 1)  # de-chunked and content-decoded by warcio
    if len(payload) > max_bytes:
        report(Problem("doc_too_large", file, ri, f"payload > max_doc_bytes={max_bytes} {url}"))
        return None
    if kind == "response" and not mime and not _looks_html(payload):
        report(Problem("warc_not_html", file, ri, f"no content type and not HTML {url}"))
        return None
    text = _decode(payload, _declared_charset(record))
    if text is None:
        report(Problem("warc_undecodable", file, ri, f"no charset decodes the payload {url}"))
        return None
    if not text.strip():
        report(Problem("empty_text", file, ri, f"empty payload {url}"))
        return None
    meta = {
        "url": url,
        "warc_record_id": record.rec_headers.get_header("WARC-Record-ID"),
        "warc_date": record.rec_headers.get_header("WARC-Date"),
        "path": file,
        "record": ri,
    }
    return Record(text, ri, None, meta, html=kind == "response")


def read_warc(path: str | Path, report: Report, max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES) -> Iterator[Record]:
    """HTML responses (to extract) and WET conversions (plain text) of a WARC file (.warc, .warc.gz)."""
    from warcio.archiveiterator import ArchiveIterator
    from warcio.recordloader import ArchiveLoadFailed

    file, ri = str(path), -1
    try:
        with open(path, "rb") as raw:
            for ri, record in enumerate(ArchiveIterator(raw)):
                rec = _warc_record(record, ri, file, report, max_doc_bytes)
                if rec is not None:
                    yield rec
    except (ArchiveLoadFailed, *_read_errors()) as exc:
        reason = "bad_warc" if isinstance(exc, ArchiveLoadFailed) else _corruption(Path(path), exc)
        report(Problem(reason, file, ri + 1, f"{type(exc).__name__}: {exc}; kept records before"))
        return
    if ri == -1:
        report(Problem("empty_file", file, None, "no WARC records"))


def read_hf(
    base: str,
    fields: tuple[str, str | None],
    report: Report,
    split: str = "train",
    load_from_disk: bool = False,
    max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES,
) -> Iterator[Record]:
    """Records of a Hugging Face dataset (a `save_to_disk` folder, local files or a cached Hub id), row by row."""
    import datasets

    text_field, id_field = fields
    try:
        ds = datasets.load_from_disk(base) if load_from_disk else datasets.load_dataset(base, split=split)
    except Exception as exc:  # datasets raises many types; one unreadable dataset is one counted problem
        report(Problem("unreadable_dataset", base, None, f"{type(exc).__name__}: {exc}"))
        return
    cols, why = _parquet_columns(ds.features.arrow_schema, text_field, id_field)
    if not cols:
        report(Problem("bad_schema", base, None, why))
        return
    if len(ds) == 0:
        report(Problem("empty_file", base, None, "no rows"))
        return
    tables = ds.select_columns(cols).with_format("arrow").iter(batch_size=256)
    batches = (b for t in tables for b in t.to_batches())
    yield from _arrow_rows(batches, fields, cols, base, report, max_doc_bytes)
