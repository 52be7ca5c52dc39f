"""Offline language filter: py3langid, whose model ships inside its pip wheel, behind a datatrove filter."""

# No `from __future__ import annotations`: datatrove reads real return annotations.

from typing import Any

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter


def load_identifier() -> Any:
    """py3langid's identifier (97 languages, ISO 639-1 codes) with normalised probabilities, from the wheel's model."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


class LanguageFilter(BaseFilter):
    """Keep documents whose language is one of `languages` with probability at least `min_score`.

    Drop reasons: `language_<code>` (another language is the most likely) and `low_language_score`.
    Only documents of `domains` are judged (None: all). The first `max_chars` characters decide; the
    language and its probability are stored as metadata `language` and `language_score`.
    """

    name = "🌍 language (py3langid)"
    _requires_dependencies = ["py3langid"]

    def __init__(
        self,
        languages: list[str],
        min_score: float = 0.65,
        domains: list[str] | None = None,
        max_chars: int = 3000,
        exclusion_writer: Any = None,
    ) -> None:
        super().__init__(exclusion_writer)
        self.languages = sorted(languages)
        self.min_score = min_score
        self.domains = sorted(domains) if domains is not None else None
        self.max_chars = max_chars
        self._identifier: Any = None

    @property
    def identifier(self) -> Any:
        """The py3langid identifier, loaded on first use (about 1 s)."""
        if self._identifier is None:
            self._identifier = load_identifier()
        return self._identifier

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_identifier": None}

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        """Judge a document's language; documents outside `domains` pass untouched."""
        if self.domains is not None and doc.metadata.get("domain") not in self.domains:
            return True
        lang, score = self.identifier.classify(doc.text[: self.max_chars])
        doc.metadata["language"] = lang
        doc.metadata["language_score"] = round(float(score), 4)
        if lang not in self.languages:
            return False, f"language_{lang}"
        return True if score >= self.min_score else (False, "low_language_score")
