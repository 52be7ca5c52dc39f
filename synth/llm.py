"""Optional OpenAI-compatible chat backend that rewrites a task's problem statement (off by default).

The client POSTs `{base_url}/chat/completions` with `urllib.request` (no extra dependency), retries timeouts,
connection errors, 429 / 5xx answers and malformed JSON with exponential backoff, and raises `LLMError` after
the last try. The prompt holds the failing tests, their failure output and the broken function's signature and
docstring; never the gold patch. The answer is validated (non-empty, within a length cap, code fences stripped,
none of the gold patch's added lines copied verbatim) and the template statement is used on any failure, with
the reason returned in `Statement.reason`. Generated text is only ever stored, never executed.
"""

from __future__ import annotations

import ast
import http.client
import json
import logging
import os
import re
import textwrap
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from automixer.config import LLMConfig
    from synth.task import Task

log = logging.getLogger(__name__)

MAX_STATEMENT_CHARS = 4000
"""Longest accepted statement."""
MAX_LOG_CHARS = 1500
"""Failure output kept per failing test in the prompt."""
MAX_TESTS_SHOWN = 6
MIN_LEAK_CHARS = 6
"""Added gold-patch lines shorter than this (`else:`, `)`) are not leak-checked."""
SYSTEM_PROMPT = (
    "You write the problem statement of a bug report, like a GitHub issue, for a Python project. Describe the "
    "observed misbehaviour from the failing tests and their output: what is called, what is expected, what "
    "happens instead, and how to reproduce it. Do not propose a fix, do not write code that fixes it, do not "
    "quote a patch. Plain prose with inline code, under 250 words."
)
_FENCE = re.compile(r"^\s*```[\w+-]*\s*$")
_WORKSPACE = re.compile(r"/\S*?/synth-ws-[^/\s\"]+/")
"""The private temp dir of a sandboxed run, as it appears in tracebacks (dropped from failure output)."""
_RETRY_STATUS = frozenset({408, 409, 425, 429})


class LLMError(RuntimeError):
    """The endpoint gave no usable answer after every try (or refused the request outright)."""


class ChatClient:
    """A minimal OpenAI-compatible chat-completions client with timeouts and retries."""

    def __init__(
        self, base_url: str, model: str, api_key: str = "", timeout_s: float = 30.0, retries: int = 2,
        backoff_s: float = 1.0, max_tokens: int | None = None,
    ) -> None:  # fmt: skip
        if not model.strip():
            raise ValueError("ChatClient needs a model name")
        if retries < 0 or timeout_s <= 0 or backoff_s < 0:
            raise ValueError(
                f"need retries >= 0, timeout_s > 0, backoff_s >= 0; got {retries}, {timeout_s}, {backoff_s}"
            )
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.api_key, self.timeout_s = model, api_key, timeout_s
        self.retries, self.backoff_s, self.max_tokens = retries, backoff_s, max_tokens

    def _request(self, messages: list[dict]) -> urllib.request.Request:
        body: dict = {"model": self.model, "messages": messages, "temperature": 0}
        if self.max_tokens:
            body["max_tokens"] = self.max_tokens
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return urllib.request.Request(self.url, data=json.dumps(body).encode(), headers=headers, method="POST")

    def _attempt(self, messages: list[dict]) -> tuple[str | None, str, bool]:
        """(answer or None, why not, whether to retry) of one HTTP exchange."""
        try:
            with urllib.request.urlopen(self._request(messages), timeout=self.timeout_s) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:200].decode("utf-8", "replace") if exc.fp else ""
            retry = exc.code in _RETRY_STATUS or exc.code >= 500
            return None, f"HTTP {exc.code} {exc.reason}: {detail}".strip(), retry
        except (TimeoutError, urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                return None, f"timed out after {self.timeout_s:g}s", True
            return None, f"connection failed ({type(reason).__name__}: {reason})", True
        try:
            content = json.loads(raw)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            return None, f"malformed response ({type(exc).__name__}): {raw[:120]!r}", True
        if not isinstance(content, str):
            return None, f"malformed response: content is {type(content).__name__}", True
        return content, "", False

    def complete(self, messages: list[dict]) -> str:
        """The assistant's reply to `messages`; raises LLMError after the last failed try."""
        why = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            answer, why, retry = self._attempt(messages)
            if answer is not None:
                return answer
            log.info("LLM request %d/%d to %s failed: %s", attempt + 1, self.retries + 1, self.url, why)
            if not retry:
                break
        raise LLMError(f"{self.url}: no usable answer after {attempt + 1} attempt(s): {why}")


def client_from_config(cfg: LLMConfig) -> ChatClient | None:
    """A client for `synth.llm`, or None when it is disabled; the key comes from `cfg.api_key_env`."""
    if not cfg.enabled:
        return None
    if not cfg.model.strip():
        raise ValueError("synth.llm.enabled is true but synth.llm.model is empty: name the model to ask")
    key = os.environ.get(cfg.api_key_env, "")
    return ChatClient(cfg.base_url, cfg.model, key, cfg.timeout_s, cfg.retries, max_tokens=cfg.max_tokens)


@dataclass(frozen=True)
class Statement:
    """A problem statement and where it came from."""

    text: str
    source: str
    """`llm` or `template`."""
    reason: str = ""
    """Why the template was used (empty when the LLM answer was accepted)."""


def signature_and_docstring(source: str, qualname: str) -> str:
    """The `def` line(s) and docstring of a function, without its body ("" if it cannot be found)."""
    from synth.mutate import find_function

    try:
        func = find_function(ast.parse(source), qualname)
    except (SyntaxError, ValueError, KeyError):
        return ""
    lines = source.splitlines()
    first = min([func.lineno, *(d.lineno for d in func.decorator_list)]) - 1
    head_end = func.body[0].lineno - 1
    if ast.get_docstring(func, clean=False) is not None:
        head_end = func.body[0].end_lineno or head_end
    if head_end <= first:  # `def f(): return 1` on one line
        return textwrap.dedent(lines[first]).split(":", 1)[0] + ":"
    return textwrap.dedent("\n".join(lines[first:head_end]))


def failure_logs(task: Task) -> dict[str, str]:
    """Output of each failing test of the broken workspace (one sandboxed run of the task's test command)."""
    from synth.execute import Limits, execute

    try:
        res = execute(task.files, task.test_command, Limits())
    except (OSError, ValueError) as exc:
        log.info("task %s: no failure output (%s)", task.task_id, exc)
        return {}
    for line in reversed(res.stdout.splitlines()):
        if line.startswith("@@") and "_RESULTS@@ " in line:
            try:
                logs = json.loads(line.split("@@ ", 1)[1]).get("logs", {})
            except (ValueError, AttributeError):
                break
            return {t: _WORKSPACE.sub("", str(logs.get(t, ""))) for t in task.fail_to_pass}
    return {}


def build_messages(task: Task, template: str, logs: dict[str, str]) -> list[dict]:
    """The chat messages: failing tests, their output, the broken function's signature/docstring; no patch."""
    from synth.screen import scope_file

    try:
        signature = signature_and_docstring(
            task.files[scope_file(task.files, task.module, task.function)], task.function
        )
    except KeyError:
        signature = ""
    shown = task.fail_to_pass[:MAX_TESTS_SHOWN]
    outputs = "\n\n".join(f"### {t}\n{logs.get(t, '')[-MAX_LOG_CHARS:].strip() or '(no output)'}" for t in shown)
    user = (
        f"Function `{task.function}` in module `{task.module}`:\n\n```python\n{signature}\n```\n\n"
        f"Failing tests ({len(task.fail_to_pass)}):\n" + "\n".join(f"- {t}" for t in shown) + "\n\n"
        f"Their output:\n\n{outputs}\n\nA terse statement for context:\n\n{template}\n\n"
        "Write the problem statement."
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def _squash(text: str) -> str:
    return " ".join(text.split())


def validate_statement(answer: str, gold_patch: str, prompt_text: str, max_chars: int) -> tuple[str, str]:
    """(cleaned statement, "") if `answer` is acceptable, else ("", why it is rejected)."""
    text = "\n".join(line for line in answer.splitlines() if not _FENCE.match(line)).strip()
    if not text:
        return "", "empty answer"
    if len(text) > max_chars:
        return "", f"answer too long ({len(text)} > {max_chars} chars)"
    flat, given = _squash(text), _squash(prompt_text)
    for line in gold_patch.splitlines():
        added = _squash(line[1:]) if line.startswith("+") and not line.startswith("+++ ") else ""
        if len(added) >= MIN_LEAK_CHARS and added not in given and added in flat:
            return "", f"answer copies a line of the gold patch: {added[:80]!r}"
    return text, ""


def llm_problem_statement(
    task: Task, template: str, client: ChatClient, logs: dict[str, str] | None = None,
    max_chars: int = MAX_STATEMENT_CHARS,
) -> Statement:  # fmt: skip
    """The LLM's statement for a task if it passes validation, else the template with the reason."""
    try:
        messages = build_messages(task, template, failure_logs(task) if logs is None else logs)
        answer = client.complete(messages)
    except LLMError as exc:
        return Statement(template, "template", str(exc))
    prompt_text = "\n".join(m["content"] for m in messages)
    text, why = validate_statement(answer, task.gold_patch, prompt_text, max_chars)
    return Statement(text, "llm") if text else Statement(template, "template", why)


def write_problem_statement(
    task: Task, template: str, client: ChatClient, logs: dict[str, str] | None = None,
    max_chars: int = MAX_STATEMENT_CHARS,
) -> str:  # fmt: skip
    """The statement text of `llm_problem_statement`; a fallback to the template is logged with its reason."""
    result = llm_problem_statement(task, template, client, logs, max_chars)
    if result.source == "template":
        log.warning("task %s: template problem statement used: %s", task.task_id, result.reason)
    return result.text
