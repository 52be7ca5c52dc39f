"""FastWebQualityFilter against datatrove's own Gopher quality → Gopher repetition → C4 → FineWeb chain."""

from __future__ import annotations

import copy
import gzip
import itertools
import json
import math
import pickle
import random
import re
from pathlib import Path

import pytest
from datatrove.data import Document
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)
from datatrove.pipeline.filters.base_filter import get_filter_result
from datatrove.pipeline.filters.gopher_repetition_filter import find_all_duplicate, find_top_duplicate, get_n_grams
from datatrove.utils.text import split_into_words

from automixer.curate.quality import QUALITY_SIGNALS, FastWebQualityFilter, _NGrams, _repeated_chars, apply_chain
from automixer.curate.spacy_affixes import ALPHABETS, AlternativeDispatch, plain_alphabets
from automixer.curate.words import CachedWordTokenizer


def _read_jsonl(path: Path, limit: int | None = None) -> list[dict]:
    with (gzip.open if path.suffix == ".gz" else open)(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in itertools.islice(f, limit)]


@pytest.fixture(scope="module")
def web_docs(shared_data: Path) -> list[Document]:
    """Every dolma document, the CCNet head documents and the text of 50 real HTML pages (trafilatura)."""
    import trafilatura

    docs = []
    for path in sorted((shared_data / "web").glob("dolma_*.jsonl*")):
        docs += [Document(text=r["text"], id=f"{path.name}/{i}") for i, r in enumerate(_read_jsonl(path))]
    for i, page in enumerate(_read_jsonl(shared_data / "web" / "trafilatura_eval_pages.jsonl.gz", 50)):
        text = trafilatura.extract(page["html"])
        if text:
            docs.append(Document(text=text, id=f"page/{i}"))
    return docs


def test_parity_with_datatrove_chain_on_shared_web_corpus(web_docs: list[Document]) -> None:
    reference = [GopherQualityFilter(), GopherRepetitionFilter(), C4QualityFilter(), FineWebQualityFilter()]
    expected = apply_chain(reference, web_docs)
    got = apply_chain([FastWebQualityFilter()], web_docs)
    assert len(web_docs) >= 697 + 20 + 40
    mismatches = [(d.id, e[0], g[0]) for d, e, g in zip(web_docs, expected, got, strict=True) if e != g]
    assert mismatches == []
    reasons = {r for r, _ in expected}
    # the corpus exercises several rule groups, kept docs and C4's rewriting
    assert {None, "gopher_short_doc", "gopher_below_alpha_threshold", "too_few_sentences"} <= reasons
    assert any(r is None and e != d.text for d, (r, e) in zip(web_docs, expected, strict=True))


CONFIGS = [
    {
        "gopher_quality": {"min_doc_words": 10, "stop_words": ["und", "der", "the"], "max_non_alpha_words_ratio": 0.5},
        "gopher_repetition": {"top_n_grams": ((2, 0.3), (5, 0.1)), "dup_n_grams": ((3, 0.2), (7, 0.1))},
    },
    {"gopher_quality": False, "gopher_repetition": False, "c4": {"filter_no_terminal_punct": False}},
    {"gopher_quality": False, "c4": False, "fineweb": {"line_punct_exclude_zero": True, "new_line_ratio": 0.5}},
    {"gopher_quality": {"language": "deu"}, "c4": {"max_word_length": 20, "min_num_sentences": 3}},
]


@pytest.mark.parametrize("options", CONFIGS)
def test_parity_with_non_default_options(web_docs: list[Document], options: dict) -> None:
    docs = web_docs[::10]
    blocks = [
        (GopherQualityFilter, "gopher_quality"),
        (GopherRepetitionFilter, "gopher_repetition"),
        (C4QualityFilter, "c4"),
        (FineWebQualityFilter, "fineweb"),
    ]
    reference = [cls(**options.get(key, {})) for cls, key in blocks if options.get(key, True) is not False]
    expected = apply_chain(reference, docs)
    assert apply_chain([FastWebQualityFilter(**options)], docs) == expected
    assert len({r for r, _ in expected}) >= 3


def test_signals_are_recorded_as_floats(web_docs: list[Document]) -> None:
    f = FastWebQualityFilter()
    results = []
    for doc in copy.deepcopy(web_docs[:120]):
        keep, reason = get_filter_result(f.filter(doc))
        results.append((keep, reason, doc))
        assert set(QUALITY_SIGNALS) <= set(doc.metadata)
        assert all(isinstance(doc.metadata[k], float) for k in QUALITY_SIGNALS)
    kept = [d for keep, _, d in results if keep]
    short = [d for _, reason, d in results if reason == "gopher_short_doc"]
    assert kept and short
    assert all(not math.isnan(d.metadata[k]) for d in kept for k in QUALITY_SIGNALS)
    assert all(d.metadata["n_words"] < 50 and math.isnan(d.metadata["dup_line_frac"]) for d in short)


def test_pipeline_run_counts_reasons_and_survives_pickling(web_docs: list[Document]) -> None:
    f = FastWebQualityFilter()
    docs = copy.deepcopy(web_docs[:60])
    kept = list(f.run(iter(docs)))
    clone = pickle.loads(pickle.dumps(f))  # executors pickle steps: caches are dropped, results are not
    again = list(clone.run(iter(copy.deepcopy(web_docs[:60]))))
    assert [d.id for d in kept] == [d.id for d in again] and 0 < len(kept) < 60
    stats = f.stats.to_dict()["stats"]
    by_reason = {k: v for k, v in stats.items() if k.startswith("dropped_")}
    assert stats["dropped"] == sum(by_reason.values()) == 60 - len(kept)
    assert stats["line-total"]["total"] >= stats["line-kept"]["total"] > 0  # C4's line counters, summed per doc


def test_cached_tokenizer_returns_datatrove_words(web_docs: list[Document], shared_data: Path) -> None:
    texts = [d.text for d in web_docs[::15]]
    texts += [r["text"] for r in _read_jsonl(shared_data / "code" / "code_corpus_python.jsonl.gz", 15)]
    texts += [r["text"] for r in _read_jsonl(shared_data / "math" / "openlogic_tex.jsonl.gz", 15)]
    texts += ["", "   ", "cannot won't U.S.A. e-mail x+y=3 (a) [1] “quoted” 3.5km $10 :) http://a.b/c?d=1"]
    tokenizer = CachedWordTokenizer("eng")
    for text in texts:
        assert tokenizer.analyze(text).words == split_into_words(text)
    assert tokenizer._fast and len(tokenizer._cache) > 1000


def test_plain_alphabets_are_proven_against_the_rules() -> None:
    import spacy
    from spacy.util import compile_suffix_regex

    nlp = spacy.blank("en")
    assert plain_alphabets(nlp.tokenizer) == list(ALPHABETS)
    nlp.tokenizer.suffix_search = compile_suffix_regex([*nlp.Defaults.suffixes, "ing"]).search
    assert plain_alphabets(nlp.tokenizer) == [ALPHABETS[1]]  # letters can now be split off: no shortcut


def test_affix_dispatch_equals_full_regex(web_docs: list[Document]) -> None:
    import spacy

    tok = spacy.blank("en").tokenizer
    plain = frozenset().union(*ALPHABETS)
    suffix = AlternativeDispatch(tok.suffix_search.__self__, suffix=True, plain=plain)
    infix = AlternativeDispatch(tok.infix_finditer.__self__, suffix=False, plain=plain)
    chunks = list(dict.fromkeys(c for d in web_docs[::4] for c in d.text.split()))
    rng = random.Random(0)
    pool = sorted(set("".join(chunks)) | set(".,;:!?-–—'\"()[]{}<>/\\$%&*+=^~#@|_…«»0123456789aZé"))
    strings = chunks + ["".join(rng.choices(pool, k=rng.randint(1, 8))) for _ in range(20_000)]
    for s in strings:
        want = tok.suffix_search(s)
        got = suffix.search(s)
        assert (got and got.span()) == (want and want.span()), s
        assert [m.span() for m in infix.finditer(s)] == [m.span() for m in tok.infix_finditer(s)], s


def test_ngram_helpers_equal_datatrove() -> None:
    rng = random.Random(0)
    for _ in range(3000):
        vocab = ["".join(rng.choices("ab", k=rng.randint(1, 3))) for _ in range(rng.randint(1, 5))]
        words = rng.choices(vocab, k=rng.randint(0, 40))
        grams = _NGrams(words)
        for n in range(1, 11):
            spaced = grams.spaced(n)
            assert spaced == get_n_grams(words, n)
            if spaced:
                top, count = max(((k, spaced.count(k)) for k in spaced), key=lambda kc: kc[1])
                assert len(top) * count == find_top_duplicate(get_n_grams(words, n))
            assert _repeated_chars(grams.glued(n), n) == find_all_duplicate(words, n)


def test_options_are_validated_by_datatrove() -> None:
    with pytest.raises(TypeError, match="min_doc_wrds"):
        FastWebQualityFilter(gopher_quality={"min_doc_wrds": 3})
    f = FastWebQualityFilter(c4=False, fineweb=None)
    assert f.c4 is None and f.fw is None and f.gq.min_doc_words == 50
    doc = Document(text="word " * 10, id="x")
    assert f.filter(doc) == (False, "gopher_short_doc")
    assert re.fullmatch(r"(word )+", doc.text)
