"""The problem statement a solver sees: the symptom (which tests fail, how to run them), never the fix."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from synth.draft import Draft
    from synth.llm import ChatClient
    from synth.task import Task

MAX_LISTED = 8


def template_statement(task: Task, draft: Draft) -> str:
    """A template statement: the family's own text, or which tests fail and the command that runs them."""
    if draft.problem_statement:
        return draft.problem_statement
    failing = "\n".join(f"- `{t}`" for t in task.fail_to_pass[:MAX_LISTED])
    more = len(task.fail_to_pass) - MAX_LISTED
    failing += f"\n- ... and {more} more" if more > 0 else ""
    return (
        f"Tests of `{draft.module}` fail. Run them with:\n\n    {' '.join(task.test_command)}\n\n"
        f"These tests fail and must pass:\n{failing}\n\n"
        f"The other {len(task.pass_to_pass)} tests pass and must keep passing."
    )


def problem_statement(task: Task, draft: Draft, llm: ChatClient | None) -> tuple[str, dict[str, str]]:
    """The statement for a verified task (the optional LLM's, else the template) and its provenance entries."""
    template = template_statement(task, draft)
    if llm is None:
        return template, {"statement": "template"}
    from synth.llm import llm_problem_statement

    result = llm_problem_statement(task, template, llm)
    return result.text, {"statement": result.source, **({"statement_fallback": result.reason} if result.reason else {})}
