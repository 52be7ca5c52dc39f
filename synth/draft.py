"""What a task family hands to the verifier: a candidate that builds a draft (broken + fixed workspace)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Draft:
    """An unverified task: the broken and the fixed workspace, which tests to run, and where it came from."""

    family: str
    """`bugfix`, `implement`, `cross_module`, `rename`, `version_pin` or `nondeterministic`."""
    source_path: str
    """Stable name of the real source the task was made from, e.g. `TheAlgorithms/Python/maths/gcd.py`."""
    repo: str
    """Repository of the source (`stdlib` for Python's standard library, `` for a local folder)."""
    commit: str
    """Commit of the source, or the Python version for `stdlib`, or ``."""
    module: str
    """Dotted name of the main module of the task (the one holding `function`)."""
    function: str
    """Qualname of the function the task is about (`func` or `Class.method`), defined in `scope_file`."""
    operators: tuple[str, ...]
    """Mutation operators or template names applied, in order."""
    seed: int
    """Seed that produced this draft (with the source, it regenerates it)."""
    description: str
    """What was changed, for humans (never shown in the problem statement)."""
    broken: dict[str, str]
    """Path -> text of the broken workspace, without the test runner script (the verifier adds it)."""
    fixed: dict[str, str]
    """Path -> text of the reference (fixed) workspace, without the test runner script."""
    targets: tuple[str, ...]
    """Runner targets: module files whose doctests run and `test_*.py` files whose tests run."""
    scope_file: str
    """Workspace path of the file holding the reference `function` (mutated by the test-strength gate)."""
    test_ids: tuple[str, ...] | None = None
    """Only these test ids count (None: every test the targets define)."""
    allow_load_errors: bool = False
    """True if a test file failing to import in the broken state is a legitimate failure (project families)."""
    problem_statement: str = ""
    """Template problem statement (the optional LLM backend may rewrite it)."""
    extra: dict[str, str] = field(default_factory=dict)
    """Family-specific provenance (e.g. `amplified_inputs`, `pin`), stored in the task's provenance map."""


@dataclass(frozen=True)
class Candidate:
    """One unit of work of a family: `build()` runs in a worker thread and returns a Draft or a reject reason."""

    family: str
    key: str
    """Stable, unique id (source, function, operator, seed) used for ordering and reports."""
    operator: str
    """Operator or template name, for the per-operator yield table."""
    build: Callable[[], Draft | str]
