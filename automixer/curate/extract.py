"""HTML to text: datatrove's Trafilatura block, each page in a sandboxed process with a timeout."""

from __future__ import annotations

from typing import Any


class HtmlExtractor:
    """Main text of HTML pages with datatrove's Trafilatura block; each page runs in a sandbox with a timeout."""

    def __init__(self, timeout: float = 10.0, sandbox: bool = True) -> None:
        from datatrove.pipeline.extractors import Trafilatura

        self.block = Trafilatura(favour_precision=True, timeout=timeout)
        self.sandbox = sandbox
        self._box: Any = None

    def __enter__(self) -> HtmlExtractor:
        if self.sandbox:
            from datatrove.pipeline.extractors.base import ExtractorSandbox

            self._box = ExtractorSandbox(timeout=self.block.timeout, warmup_text="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._box is not None:
            self._box.__exit__(None, None, None)
            self._box = None

    def extract(self, html: str) -> tuple[str, str]:
        """(text, "") or ("", reason) with reason `html_timeout`, `html_extractor_died`, `html_error`, `html_no_text`."""
        try:
            text = self._box.process_document(html, self.block.extract) if self._box else self.block.extract(html)
        except TimeoutError:
            return "", "html_timeout"
        except EOFError:
            return "", "html_extractor_died"
        except Exception:  # trafilatura/lxml errors on one page must not stop the run
            return "", "html_error"
        return (text, "") if text and text.strip() else ("", "html_no_text")
