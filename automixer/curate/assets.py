"""Strict offline mode: list the external assets a curation pipeline needs, and fail before work if one is missing.

datatrove blocks fetch some assets on first use (found by reading datatrove 0.10.1):
fastText language-ID models (`LanguageFilter`, `LangStats`: lid.176 from fbaipublicfiles, GlotLID from the Hub),
C4 bad-word lists (`C4BadWordsFilter`, GitHub), fastText classifiers (`FastTextClassifierFilter.model_url`),
Google unigram frequencies (`UnigramLogProbFilter`, S3), KenLM + SentencePiece models (`CCNetPerplexityStats`, Hub),
Hugging Face tokenizers by name (`TokensCounter`, `DocumentTokenizer`), the public suffix list (tldextract in
`URLFilter`), NLTK punkt and Stanza models (word tokenizers of some languages) and Hub datasets (`hf` sources).
spaCy's blank tokenizers, datatrove's URL block lists, trafilatura and py3langid's model ship inside their wheels.
"""

from __future__ import annotations

import importlib.util
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_REMOTE = ("http://", "https://", "hf://", "s3://", "gs://")


@dataclass(frozen=True)
class Asset:
    """One external file or model a pipeline block needs at run time, how to provide it, and whether it is here."""

    block: str
    name: str
    how_to_provide: str
    present: bool


class OfflineAssetError(RuntimeError):
    """Raised before any work when a block would have to download something."""


def datatrove_cache_path(url: str, namespace: str = "default", subfolder: str = "default") -> Path:
    """Where datatrove's `cached_asset_path_or_download` keeps `url` (computed without creating folders)."""
    from huggingface_hub.constants import HF_ASSETS_CACHE

    base = Path(HF_ASSETS_CACHE).expanduser().resolve() / "datatrove" / namespace / subfolder
    # fsspec's strip_protocol keeps http(s) URLs whole and drops other protocols (hf://, s3://)
    name = url if url.startswith(("http://", "https://")) else url.split("://", 1)[-1]
    return base / name.replace("/", "_")


def _cached(block: str, name: str, url: str, namespace: str = "default", subfolder: str = "default") -> Asset:
    path = datatrove_cache_path(url, namespace, subfolder)
    done = Path(f"{path}.completed")
    how = f"download {url} on a machine with network, copy it to {path} and create the empty file {done}"
    return Asset(block, name, how, path.is_file() and done.is_file())


def _fasttext_lid(block: str, lid: Any) -> list[Asset]:
    asset = _cached(
        block, f"fastText language-ID model ({lid.MODEL_SUBFOLDER})", lid.MODEL_URL, "lid", lid.MODEL_SUBFOLDER
    )
    how = asset.how_to_provide + "; or use automixer.curate.language.LanguageFilter (py3langid, model in its wheel)"
    return [Asset(asset.block, asset.name, how, asset.present)]


def _hub_tokenizer(block: str, name: str) -> Asset:
    from automixer.curate.sources import hub_offline

    how = (
        f"pass a local tokenizer.json path instead of {name!r} (on a machine with network: "
        f"`tokenizers.Tokenizer.from_pretrained({name!r}).save('tokenizer.json')`), or put it in the Hugging Face "
        "cache and set HF_HUB_OFFLINE=1"
    )
    if Path(name).is_file():
        return Asset(block, f"tokenizer file {name}", how, True)
    from huggingface_hub import try_to_load_from_cache

    cached = isinstance(try_to_load_from_cache(name, "tokenizer.json"), str)
    return Asset(block, f"Hugging Face tokenizer {name!r}", how, cached and hub_offline())


def _word_tokenizer(block: str, tok: Any) -> list[Asset]:
    from datatrove.utils.word_tokenizers import NLTKTokenizer, SpaCyTokenizer, StanzaTokenizer

    lang = tok.language
    if isinstance(tok, NLTKTokenizer):
        try:
            import nltk

            nltk.data.find(f"tokenizers/punkt/{lang}.pickle")
            present = True
        except (ImportError, LookupError):
            present = False
        how = "on a machine with network run `python -m nltk.downloader punkt`, copy nltk_data here, set NLTK_DATA"
        return [Asset(block, f"NLTK punkt ({lang})", how, present)]
    if isinstance(tok, StanzaTokenizer):
        from stanza.resources.common import DEFAULT_MODEL_DIR

        how = f"on a machine with network run `stanza.download({lang!r})` and copy {DEFAULT_MODEL_DIR} here"
        return [Asset(block, f"Stanza models ({lang})", how, Path(DEFAULT_MODEL_DIR, lang).is_dir())]
    if isinstance(tok, SpaCyTokenizer):
        present = importlib.util.find_spec(f"spacy.lang.{lang}") is not None
        return [Asset(block, f"spaCy blank tokenizer rules ({lang})", "ships in the spacy wheel", present)]
    return []


def _load_word_tokenizer(language: str) -> Any:
    from datatrove.utils.word_tokenizers import load_word_tokenizer

    try:
        return load_word_tokenizer(language)
    except (ValueError, ImportError):  # no tokenizer assigned, or its package is missing: nothing to fetch
        return None


def _public_suffix_list(block: str, extractor: Any) -> Asset:
    cache = getattr(extractor, "_cache", None)
    key = {"urls": extractor.suffix_list_urls, "fallback_to_snapshot": extractor.fallback_to_snapshot}
    try:
        cached = cache is not None and cache.get("publicsuffix.org-tlds", key) is not None
    except KeyError:
        cached = False
    how = (
        "give the block `tldextract.TLDExtract(suffix_list_urls=())` (the snapshot bundled in the tldextract wheel), "
        "or fill tldextract's cache online (`tldextract --update`) and ship it (TLDEXTRACT_CACHE)"
    )
    return Asset(block, "public suffix list (tldextract)", how, not extractor.suffix_list_urls or cached)


def _c4_badwords(block: str, step: Any) -> Asset:
    from datatrove.pipeline.filters import c4_filters

    lang = step.default_language
    url = c4_filters._EN_BADWORDS_URL if lang == "en" else c4_filters._BADWORDS_URL + lang
    return _cached(
        block, f"C4 bad-words list ({lang}; other document languages fetch their own)", url, "filters", "c4_badwords"
    )


def _kenlm(block: str, model: Any) -> list[Asset]:
    from datatrove.utils.perplexity import MODEL_REPO
    from huggingface_hub import hf_hub_url

    files = (f"{model.language}.arpa.bin", f"{model.language}.sp.model")
    urls = [hf_hub_url(MODEL_REPO, str(Path(model.model_dataset, f))) for f in files]
    return [_cached(block, f"KenLM/SentencePiece {Path(u).name}", u) for u in urls]


def _sources(block: str, step: Any) -> list[Asset]:
    from automixer.curate.sources import offline_hub_error

    out = []
    if any(s["format"] == "warc" or s.get("html") for s in step.sources):
        present = all(importlib.util.find_spec(m) is not None for m in ("trafilatura", "lxml_html_clean"))
        out.append(Asset(block, "trafilatura HTML extraction", "pip install trafilatura lxml_html_clean", present))
    for s in step.sources:
        if s["format"] == "hf" and not Path(s["base"]).exists():
            how = str(offline_hub_error(s["name"], s["base"]))
            out.append(Asset(f"source {s['name']}", f"Hub dataset {s['base']!r}", how, False))
    return out


def _step_assets(step: Any) -> list[Asset]:
    """Assets of one pipeline step, found from its class and the objects it holds."""
    from datatrove.pipeline.filters import C4BadWordsFilter, FastTextClassifierFilter, UnigramLogProbFilter
    from datatrove.utils.lid import FastTextLID
    from datatrove.utils.perplexity import KenlmModel
    from datatrove.utils.word_tokenizers import WordTokenizer

    from automixer.curate.language import LanguageFilter
    from automixer.curate.source_reader import SourcesReader

    block = f"{type(step).__name__} ({getattr(step, 'name', '')})"
    out: list[Asset] = []
    if isinstance(step, SourcesReader):
        out += _sources(block, step)
    if isinstance(step, LanguageFilter):
        present = importlib.util.find_spec("py3langid") is not None
        out.append(Asset(block, "py3langid model", "pip install py3langid (the model ships in the wheel)", present))
    if isinstance(step, C4BadWordsFilter):
        out.append(_c4_badwords(block, step))
    if isinstance(step, UnigramLogProbFilter):
        from datatrove.pipeline.filters.unigram_log_probs import UNIGRAM_DOWNLOAD

        url, path = UNIGRAM_DOWNLOAD, datatrove_cache_path("", "filters", "unigram_logprob_filter") / "unigram_freq.csv"
        out.append(Asset(block, "Google unigram frequencies", f"download {url} to {path}", path.is_file()))
    if isinstance(step, FastTextClassifierFilter) and not Path(step.model_url).is_file():
        out.append(_cached(block, f"fastText classifier {step.model_url}", step.model_url, "filters", "fasttext"))
    for key, value in vars(step).items():
        if isinstance(value, FastTextLID):
            out += _fasttext_lid(block, value)
        elif isinstance(value, KenlmModel):
            out += _kenlm(block, value)
        elif isinstance(value, WordTokenizer):
            out += _word_tokenizer(block, value)
        elif key == "language" and isinstance(value, str):  # datatrove loads this word tokenizer on first use
            tok = _load_word_tokenizer(value)
            out += _word_tokenizer(block, tok) if tok is not None else []
        elif type(value).__name__ == "TLDExtract":
            out.append(_public_suffix_list(block, value))
        elif key == "tokenizer_name_or_path" and isinstance(value, str):
            out.append(_hub_tokenizer(block, value))
        elif isinstance(value, str) and value.startswith(_REMOTE) and key != "model_url":
            out.append(Asset(block, f"remote file {value}", f"copy {value} here and pass its local path", False))
    return out


def _flatten(steps: Iterable[Any]) -> Iterator[Any]:
    for item in steps:
        if isinstance(item, tuple | list):  # a (name, steps, tasks, parallel) stage or a list of steps
            yield from _flatten(s for s in item if not isinstance(s, str | int | bool))
        else:
            yield item
            if getattr(item, "inner", None) is not None:  # a domain-scoped wrapper (curate.filters.DomainScoped)
                yield item.inner


def required_assets(steps: Iterable[Any]) -> list[Asset]:
    """Every external asset the given datatrove steps (or stages of steps) need at run time, deduplicated."""
    seen: dict[tuple[str, str], Asset] = {}
    for step in _flatten(steps):
        for asset in _step_assets(step):
            seen.setdefault((asset.block, asset.name), asset)
    return list(seen.values())


def check_offline(steps: Iterable[Any]) -> list[Asset]:
    """The assets the steps need; raise OfflineAssetError naming each missing one's block and how to provide it."""
    assets = required_assets(steps)
    missing = [a for a in assets if not a.present]
    if missing:
        lines = "\n".join(f"- {a.block}: {a.name} is not available locally; {a.how_to_provide}" for a in missing)
        raise OfflineAssetError(
            f"strict offline mode: {len(missing)} asset(s) would be downloaded at run time:\n{lines}"
        )
    return assets


@contextmanager
def no_network() -> Iterator[None]:
    """Within the block (this process and processes it forks), refuse every connection except loopback and Unix."""
    real_connect, real_connect_ex, real_getaddrinfo = (
        socket.socket.connect,
        socket.socket.connect_ex,
        socket.getaddrinfo,
    )
    local = {"localhost", "127.0.0.1", "::1", None}

    def allowed(sock: socket.socket, address: Any) -> bool:
        return sock.family == socket.AF_UNIX or (isinstance(address, tuple) and address[0] in local)

    def connect(sock: socket.socket, address: Any) -> None:
        if not allowed(sock, address):
            raise OSError(f"offline: connection to {address!r} refused (strict offline mode)")
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        return real_connect_ex(sock, address) if allowed(sock, address) else 111  # ECONNREFUSED

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in local and not (isinstance(host, str) and host.startswith("127.")):
            raise socket.gaierror(f"offline: name lookup of {host!r} refused (strict offline mode)")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = (
            real_connect,
            real_connect_ex,
            real_getaddrinfo,
        )  # type: ignore[method-assign]
