"""Datatrove pipeline steps used by curation (module level so executors can pickle them)."""

# No `from __future__ import annotations`: datatrove reads real return annotations (exact dedup).

import re

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.utils.word_tokenizers import WordTokenizer

from automixer.curate.source_reader import SourcesReader  # noqa: F401  (re-exported: pipelines import it here)

_WS = re.compile(r"\s+")


class SplitWordTokenizer(WordTokenizer):
    """Whitespace split; MinHash shingles text that datatrove already lower-cased and stripped of punctuation."""

    def __init__(self) -> None:
        super().__init__("whitespace")

    def word_tokenize(self, text: str) -> list[str]:
        """Split on runs of whitespace."""
        return text.split()

    def sent_tokenize(self, text: str) -> list[str]:
        """Not needed for MinHash."""
        raise NotImplementedError("SplitWordTokenizer only splits words")

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        """Not needed for MinHash."""
        raise NotImplementedError("SplitWordTokenizer only splits words")


def exact_content(doc: Document) -> str:
    """The text exact dedup compares: whitespace runs collapsed, ends stripped."""
    return _WS.sub(" ", doc.text).strip()


class RankFileReader(PipelineStep):
    """Read the intermediate JSONL file an earlier stage wrote for this task's rank (if any)."""

    type = "📖 - READER"
    name = "automixer rank file"

    def __init__(self, folder: str) -> None:
        super().__init__()
        self.folder = folder

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        """Yield the documents of `<folder>/<rank>.jsonl` in written order."""
        from datatrove.pipeline.readers import JsonlReader

        reader = JsonlReader(self.folder, add_file_path=False)
        name = f"{rank:05d}.jsonl"
        if reader.data_folder.isfile(name):
            yield from reader.read_file(name)


class DomainCounter(PipelineStep):
    """Count documents per domain as they pass (stat `docs_kept/<domain>`)."""

    type = "📊 - STATS"
    name = "automixer kept counter"

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        """Pass documents through unchanged, counting them."""
        for doc in data:
            self.stat_update(f"docs_kept/{doc.metadata['domain']}")
            yield doc


class MinCharsFilter(BaseFilter):
    """Drop documents shorter than `min_chars` characters (after stripping)."""

    name = "min_chars"

    def __init__(self, min_chars: int, exclusion_writer=None) -> None:
        super().__init__(exclusion_writer)
        self.min_chars = min_chars

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        """Keep documents with at least `min_chars` non-edge characters."""
        return True if len(doc.text.strip()) >= self.min_chars else (False, "below_min_chars")
