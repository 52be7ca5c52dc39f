"""Strict offline mode: the asset check names what would be downloaded; the language filter works with no network."""

from __future__ import annotations

import gzip
import json
import socket
from pathlib import Path

import pytest
from datatrove.data import Document

from automixer.curate.assets import OfflineAssetError, check_offline, no_network, required_assets
from automixer.curate.extract import HtmlExtractor
from automixer.curate.language import LanguageFilter

PAGES = "web/trafilatura_eval_pages.jsonl.gz"
# Pages of the trafilatura eval set labelled by reading their gold snippets (the file has no language field).
GERMAN = [0, 1, 4, 5, 6, 7, 10, 13, 16, 17, 19, 20]
ENGLISH = [32, 33, 42, 54, 55, 61, 62, 63, 75, 77, 183, 194]


@pytest.fixture(scope="module")
def pages(shared_data: Path) -> dict[int, dict]:
    """The labelled pages, their main text extracted in-process with no network."""
    wanted, out = set(GERMAN + ENGLISH), {}
    with no_network(), HtmlExtractor(sandbox=False) as html, gzip.open(shared_data / PAGES, "rt") as f:
        for i, line in enumerate(f):
            if i in wanted:
                page = json.loads(line)
                page["text"], why = html.extract(page["html"])
                assert not why, (i, why)
                out[i] = page
            if len(out) == len(wanted):
                break
    return out


def _filter(flt: LanguageFilter, docs: list[Document]) -> tuple[list[str], dict[str, int]]:
    kept = [d.id for d in flt.run(iter(docs))]
    drops = {k.removeprefix("dropped_"): int(v.total) for k, v in flt.stats.stats.items() if k.startswith("dropped_")}
    return kept, drops


def test_language_filter_runs_offline_on_real_english_and_german_pages(
    pages: dict[int, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    docs = [Document(text=p["text"], id=str(i), metadata={"domain": "web"}) for i, p in sorted(pages.items())]
    with no_network():  # the model loads from the py3langid wheel: no download, no Hub
        kept_en, drops_en = _filter(LanguageFilter(["en"]), docs)
        kept_de, drops_de = _filter(LanguageFilter(["de"]), docs)
    assert sorted(map(int, kept_en)) == ENGLISH and drops_en == {"language_de": len(GERMAN)}
    assert sorted(map(int, kept_de)) == GERMAN and drops_de == {"language_en": len(ENGLISH)}
    assert {d.metadata["language"] for d in docs} == {"en", "de"}
    assert min(d.metadata["language_score"] for d in docs) >= 0.9


def test_short_text_gets_low_score_and_other_domains_pass(pages: dict[int, dict]) -> None:
    snippets = [s for i in ENGLISH for s in pages[i]["with"]]
    docs = [Document(text=s, id=str(k), metadata={"domain": "web"}) for k, s in enumerate(snippets)]
    flt = LanguageFilter(["en"], min_score=0.65)
    kept, drops = _filter(flt, docs)
    assert drops.get("low_language_score", 0) >= 3  # e.g. "Finding a Fix": English, but too short to be sure
    for d in docs:
        lang, score = d.metadata["language"], d.metadata["language_score"]
        assert (d.id in kept) == (lang == "en" and score >= 0.65)
    code = Document(text="def f(x):\n    return x + 1\n", id="c", metadata={"domain": "code"})
    assert LanguageFilter(["de"], domains=["web"]).filter(code) is True and "language" not in code.metadata


def test_check_offline_names_each_downloading_block_and_how(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants
    from datatrove.pipeline.filters import C4BadWordsFilter, URLFilter
    from datatrove.pipeline.filters import LanguageFilter as FastTextLanguageFilter
    from datatrove.pipeline.tokens import TokensCounter

    monkeypatch.setattr(huggingface_hub.constants, "HF_ASSETS_CACHE", str(tmp_path / "assets"))
    lid, url_filter = FastTextLanguageFilter(languages=["en"]), URLFilter()
    steps = [lid, C4BadWordsFilter(), url_filter, TokensCounter("gpt2")]
    with pytest.raises(OfflineAssetError) as err:
        check_offline(steps)
    msg = str(err.value)
    assert "4 asset(s)" in msg
    for needle in ("LanguageFilter", "lid.176.bin", "py3langid", "C4BadWordsFilter", "URLFilter", "public suffix"):
        assert needle in msg, needle
    assert "TokensCounter" in msg and "tokenizer.json" in msg

    (ft,) = [a for a in required_assets([lid]) if "fastText" in a.name]
    model = Path(ft.how_to_provide.split("copy it to ")[1].split(" and create")[0])
    model.parent.mkdir(parents=True)
    model.write_bytes(b"model")
    Path(f"{model}.completed").touch()
    from tldextract import TLDExtract
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel

    Tokenizer(WordLevel({"[UNK]": 0}, unk_token="[UNK]")).save(str(tmp_path / "tokenizer.json"))
    url_filter.tldextractor = TLDExtract(suffix_list_urls=(), cache_dir=str(tmp_path / "tld"))
    provided = [lid, url_filter, TokensCounter(str(tmp_path / "tokenizer.json"))]
    assert all(a.present for a in check_offline(provided))
    with no_network():  # the bundled public suffix list really needs no network
        parts = url_filter.tldextractor("https://news.bbc.co.uk/sport")
    assert (parts.domain, parts.suffix) == ("bbc", "co.uk")


def test_default_curation_steps_need_no_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datatrove.pipeline.filters import GopherQualityFilter

    from automixer.config import CurationConfig
    from automixer.curate.filters import DomainScoped, domain_filters
    from automixer.curate.source_reader import SourcesReader
    from automixer.curate.steps import MinCharsFilter

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    warc = {"name": "w", "domain": "web", "format": "warc", "base": str(tmp_path), "files": []}
    defaults = [step for _, step in domain_filters(CurationConfig(), ["code", "math", "web"], tmp_path)]
    steps = [SourcesReader([warc]), MinCharsFilter(200), *defaults, DomainScoped(GopherQualityFilter(), ["web"], "g")]
    stages = [("filter", [*steps, LanguageFilter(["en"], domains=["web"])], 2, True)]
    names = {a.name for a in check_offline(stages)}
    assert {"trafilatura HTML extraction", "py3langid model", "spaCy blank tokenizer rules (en)"} <= names
    hub = {"name": "m", "domain": "math", "format": "hf", "base": "org/ds", "files": []}
    with pytest.raises(OfflineAssetError, match=r"source m: Hub dataset 'org/ds'.*save_to_disk"):
        check_offline([SourcesReader([warc, hub])])


def test_no_network_refuses_remote_connections_only() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    real = socket.socket.connect
    with no_network(), server:
        with socket.socket() as client:
            client.connect(server.getsockname())  # loopback stays usable (multiprocessing, local services)
        with socket.socket() as client, pytest.raises(OSError, match="strict offline mode"):
            client.connect(("0.0.0.0", server.getsockname()[1]))  # refused before any packet is sent
        with pytest.raises(socket.gaierror, match="strict offline mode"):
            socket.getaddrinfo("hub.invalid", 443)
    assert socket.socket.connect is real
