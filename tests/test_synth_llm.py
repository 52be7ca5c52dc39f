"""The optional LLM backend against a real local HTTP server: answers, retries, timeouts, validation, fallback."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from automixer.config import LLMConfig
from synth.llm import (
    ChatClient,
    LLMError,
    build_messages,
    client_from_config,
    failure_logs,
    llm_problem_statement,
    signature_and_docstring,
    validate_statement,
    write_problem_statement,
)
from synth.task import Task, make_patch

FIXED = 'def clip(x, lo, hi):\n    """Clamp x into [lo, hi].\n\n    >>> clip(5, 0, 3)\n    3\n    """\n    if x < lo:\n        return lo\n    return min(x, hi)\n'
BROKEN = FIXED.replace("min(x, hi)", "max(x, hi)")
RUNNER = Path(__file__).resolve().parents[1] / "synth" / "test_runner.py"
GOOD = "Calling `clip(5, 0, 3)` returns 5 instead of 3: values above `hi` are not clamped."


def _task() -> Task:
    files = {"mod.py": BROKEN, "run_tests.py": RUNNER.read_text()}
    return Task(
        task_id="t1", source_path="x/mod.py", module="mod", function="clip", operator="arith_swap", seed=0,
        description="min -> max", files=files, test_command=["python", "-s", "-P", "run_tests.py", "mod.py"],
        fail_to_pass=["mod.clip"], gold_patch=make_patch({"mod.py": BROKEN}, {"mod.py": FIXED}),
    )  # fmt: skip


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, replies: list[tuple]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.replies, self.requests, self.release = deque(replies), [], threading.Event()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: object) -> None:
        """Quiet."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append((self.path, dict(self.headers), body))
        kind, *rest = self.server.replies.popleft() if self.server.replies else ("raw", 500, b"out of replies")
        if kind == "slow":  # hold the answer until the test ends (the client has given up by then)
            self.server.release.wait(30)
            kind, rest = "ok", [GOOD]
        if kind == "ok":
            status, data = 200, json.dumps({"choices": [{"message": {"role": "assistant", "content": rest[0]}}]})
            data = data.encode()
        else:
            status, data = rest
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """Start a scripted local server: `serve(replies)` -> (server, base_url)."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    servers: list[_Server] = []

    def start(replies: list[tuple]) -> tuple[_Server, str]:
        server = _Server(replies)
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        servers.append(server)
        return server, f"http://127.0.0.1:{server.server_address[1]}/v1/"

    yield start
    for server in servers:
        server.release.set()
        server.shutdown()
        server.server_close()


def _client(url: str, **kw: object) -> ChatClient:
    opts = {"api_key": "", "timeout_s": 5.0, "retries": 2, "backoff_s": 0.0, **kw}
    return ChatClient(url, "tiny-model", **opts)


def test_good_answer(serve) -> None:
    server, url = serve([("ok", GOOD)])
    client = _client(url, api_key="sk-test", max_tokens=64)
    assert client.complete([{"role": "user", "content": "hi"}]) == GOOD
    path, headers, body = server.requests[0]
    assert path == "/v1/chat/completions" and headers["Authorization"] == "Bearer sk-test"
    assert body == {"model": "tiny-model", "messages": [{"role": "user", "content": "hi"}], "temperature": 0,
                    "max_tokens": 64}  # fmt: skip


def test_malformed_json_is_retried_then_fails(serve) -> None:
    bad = [("raw", 200, b"{not json"), ("raw", 200, b'{"choices": []}'), ("raw", 200, b'{"choices": [{}]}')]
    server, url = serve(bad)
    with pytest.raises(LLMError, match=r"after 3 attempt\(s\): malformed response"):
        _client(url).complete([{"role": "user", "content": "hi"}])
    assert len(server.requests) == 3


def test_server_error_then_good_answer(serve) -> None:
    server, url = serve([("raw", 500, b'{"error": "overloaded"}'), ("raw", 429, b"slow down"), ("ok", GOOD)])
    assert _client(url).complete([{"role": "user", "content": "hi"}]) == GOOD
    assert len(server.requests) == 3


def test_client_error_is_not_retried(serve) -> None:
    server, url = serve([("raw", 401, b'{"error": "bad key"}'), ("ok", GOOD)])
    with pytest.raises(LLMError, match=r"1 attempt\(s\): HTTP 401.*bad key"):
        _client(url).complete([{"role": "user", "content": "hi"}])
    assert len(server.requests) == 1


def test_slow_answer_times_out_retries_and_falls_back(serve) -> None:
    server, url = serve([("slow",), ("slow",)])
    task = _task()
    result = llm_problem_statement(task, "TEMPLATE", _client(url, timeout_s=0.3, retries=1), logs={})
    assert (result.text, result.source) == ("TEMPLATE", "template")
    assert "timed out" in result.reason and "2 attempt(s)" in result.reason
    assert len(server.requests) == 2
    server2, url2 = serve([("slow",), ("ok", GOOD)])
    assert _client(url2, timeout_s=0.3, retries=1).complete([{"role": "user", "content": "x"}]) == GOOD


def test_unreachable_server_fails_cleanly(serve) -> None:
    server, url = serve([])
    server.shutdown()
    server.server_close()
    with pytest.raises(LLMError, match="connection failed"):
        _client(url, retries=1).complete([{"role": "user", "content": "hi"}])


def test_client_from_config(monkeypatch: pytest.MonkeyPatch) -> None:
    assert client_from_config(LLMConfig()) is None
    with pytest.raises(ValueError, match="model is empty"):
        client_from_config(LLMConfig(enabled=True))
    monkeypatch.setenv("MY_KEY", "sk-abc")
    cfg = LLMConfig(enabled=True, model="m", api_key_env="MY_KEY", base_url="http://h:1/v1/", retries=4)
    client = client_from_config(cfg)
    assert client is not None
    assert (client.url, client.api_key, client.retries, client.max_tokens) == ("http://h:1/v1/chat/completions",
                                                                              "sk-abc", 4, 400)  # fmt: skip


def test_prompt_has_failures_and_signature_but_never_the_patch() -> None:
    task = _task()
    logs = failure_logs(task)  # a real sandboxed run of the broken workspace
    assert "Expected:\n    3\nGot:\n    5" in logs["mod.clip"] and "synth-ws-" not in logs["mod.clip"]
    prompt = "\n".join(m["content"] for m in build_messages(task, "TEMPLATE", logs))
    assert "mod.clip" in prompt and "Got:" in prompt and "def clip(x, lo, hi):" in prompt and "TEMPLATE" in prompt
    assert "min(x, hi)" not in prompt and "max(x, hi)" not in prompt and "@@" not in prompt
    assert signature_and_docstring(BROKEN, "clip").endswith('    3\n    """')
    assert signature_and_docstring("def f(x): return x\n", "f") == "def f(x):"


def test_validation_rules() -> None:
    patch = _task().gold_patch
    given = "def clip(x, lo, hi):\n    if x < lo:"
    assert validate_statement(f"```markdown\n{GOOD}\n```", patch, given, 4000) == (GOOD, "")
    assert validate_statement("```\n```", patch, given, 4000)[1] == "empty answer"
    assert "too long" in validate_statement("word " * 1000, patch, given, 4000)[1]
    leak = "Replace the last line with `return  min(x, hi)` to fix it."
    assert "copies a line of the gold patch" in validate_statement(leak, patch, given, 4000)[1]
    patch_with_context = patch + "+    if x < lo:\n"  # a line the prompt itself showed is not a leak
    assert validate_statement("It fails when `if x < lo:` holds.", patch_with_context, given, 4000)[1] == ""


def test_write_problem_statement_uses_answer_or_template(serve) -> None:
    task = _task()
    _, url = serve([("ok", GOOD), ("ok", "Just write `return min(x, hi)`.")])
    client = _client(url)
    assert write_problem_statement(task, "TEMPLATE", client, logs={"mod.clip": "Got: 5"}) == GOOD
    leaked = llm_problem_statement(task, "TEMPLATE", client, logs={"mod.clip": "Got: 5"})
    assert leaked.text == "TEMPLATE" and "gold patch" in leaked.reason
