"""Software edge cases as small multi-file projects built around real functions with doctests.

Four families (issue 4): `cross_module` (a bug in a library module surfaces in the app's tests),
`rename` (a renamed function with a changed signature must be carried through several call sites),
`version_pin` (app code written against release 1 of a vendored package breaks under the pinned release 2),
`nondeterministic` (a clock- or order-dependent test must be made deterministic).

Every project is grounded in a real top-level function from a `SourceFile`: the literal inputs of its doctest
examples (plus seeded, type-preserving variations of them) drive generated app code, and the expected values
of the generated tests are labelled by running the reference project in the sandbox (`project_label`). Nothing
runs corpus code in this process. Each family module documents its layout and its reject reasons; the shared
reasons are those of `project_label.label_project`.

Generation is offline and deterministic: the same files, config and seed give the same candidates in the same
order, and byte-identical drafts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from synth.families import project_cross, project_nondet, project_pin, project_rename
from synth.families.project_spec import FunctionSpec, usable_functions

if TYPE_CHECKING:
    from automixer.config import SynthConfig
    from synth.discover import SourceFile
    from synth.draft import Candidate


def _family(name: str, per_function: Callable[[FunctionSpec, SynthConfig], Iterator[Candidate]]):
    def generate(files: list[SourceFile], cfg: SynthConfig, seed: int) -> Iterator[Candidate]:
        """Candidates over the usable functions of `files`, in a seeded order."""
        for spec in usable_functions(files, seed, name):
            yield from per_function(spec, cfg)

    generate.__name__ = name
    generate.__doc__ = f"Candidates of the `{name}` family over the usable functions of `files`, in a seeded order."
    return generate


cross_module = _family(project_cross.FAMILY, project_cross.candidates)
rename = _family(project_rename.FAMILY, project_rename.candidates)
version_pin = _family(project_pin.FAMILY, project_pin.candidates)
nondeterministic = _family(project_nondet.FAMILY, project_nondet.candidates)

FAMILIES = {
    "cross_module": cross_module,
    "rename": rename,
    "version_pin": version_pin,
    "nondeterministic": nondeterministic,
}
