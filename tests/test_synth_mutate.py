"""Every AST mutation operator yields a distinct, valid, local change of one function."""

from __future__ import annotations

import ast
import difflib

import pytest

from synth.mutate import OPERATORS, MutationError, count_sites, find_function, mutate, mutate_at

SAMPLE = '''\
"""A module with a doctested function."""

LIMIT = 10  # a module constant the mutations must not touch


def clipped_sum(xs, limit=LIMIT):
    """Sum the positive values below `limit`, then cap at 100.

    >>> clipped_sum([1, 2, 30, -4], limit=5)
    3
    """
    label = "é" + str(limit < 3)  # non-ASCII before a site on the same line
    label = label.strip().lower()
    total = 0
    for x in xs:
        if x < limit and x != 0:
            total += x * 1
        else:
            continue
    return min(max(total, 0), 100)


class Box:
    def grow(self, n: int | None = None) -> int:
        """Grow.

        >>> Box().grow(2)
        3
        """
        return n + 1 if n is not None else 0
'''


def _changed_lines(before: str, after: str) -> list[int]:
    matcher = difflib.SequenceMatcher(None, before.splitlines(), after.splitlines())
    return [i + 1 for tag, i1, i2, _, _ in matcher.get_opcodes() if tag != "equal" for i in range(i1, max(i2, i1 + 1))]


@pytest.mark.parametrize("operator", sorted(OPERATORS))
def test_each_operator_makes_a_valid_different_function(operator: str) -> None:
    m = mutate(SAMPLE, "clipped_sum", operator, seed=0)
    assert m is not None, f"{operator} found no site in the sample"
    before, after = ast.parse(SAMPLE), ast.parse(m.source)
    assert ast.dump(find_function(after, "clipped_sum")) != ast.dump(find_function(before, "clipped_sum"))
    assert ast.dump(find_function(after, "Box.grow")) == ast.dump(find_function(before, "Box.grow"))
    func = find_function(before, "clipped_sum")
    assert all(func.lineno <= line <= func.end_lineno for line in _changed_lines(SAMPLE, m.source))
    assert "# a module constant the mutations must not touch" in m.source  # comments survive


def test_operators_give_distinct_mutants() -> None:
    sources = {op: mutate(SAMPLE, "clipped_sum", op, seed=0).source for op in OPERATORS}
    assert len(set(sources.values())) == len(OPERATORS)


def test_mutation_is_deterministic_for_a_seed_and_varies_across_seeds() -> None:
    assert mutate(SAMPLE, "clipped_sum", "remove_statement", 7) == mutate(SAMPLE, "clipped_sum", "remove_statement", 7)
    assert count_sites(SAMPLE, "clipped_sum", "remove_statement") >= 3
    variants = {mutate(SAMPLE, "clipped_sum", "remove_statement", s).source for s in range(20)}
    assert len(variants) >= 3


def test_splices_after_non_ascii_text_on_the_same_line() -> None:
    variants = {mutate(SAMPLE, "clipped_sum", "compare_flip", s).source for s in range(30)}
    hit = [v for v in variants if 'label = "é" + str(limit >= 3)  # non-ASCII' in v]
    assert len(hit) == 1
    assert ast.parse(hit[0])


def test_methods_and_annotations() -> None:
    m = mutate(SAMPLE, "Box.grow", "arith_swap", seed=0)
    assert m is not None and "return n - 1 if n is not None else 0" in m.source
    assert "n: int | None = None" in m.source  # annotations are never mutated
    assert mutate(SAMPLE, "Box.grow", "bool_swap", seed=0) is None  # no site


def test_unknown_operator_and_function_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown mutation operator"):
        mutate(SAMPLE, "clipped_sum", "nope", 0)
    with pytest.raises(KeyError, match="no function"):
        mutate(SAMPLE, "missing", "arith_swap", 0)


STATEMENTS = '''def norm(text, limit=3):
    """Normalise.

    >>> norm(" Ab ")
    ['ab']
    """
    words = []
    text = text.strip().lower()  # keep this comment
    parts = text.split()
    for w in parts:
        if len(w) > limit:
            words.append(w[:limit])
        elif not w:
            continue
        else:
            words.append(w)
    while not words:
        break
    return list(sorted(words))
'''


def _all(operator: str) -> dict[str, str]:
    """Description -> mutated source of every site of `operator` in `norm`."""
    out = {}
    for i in range(count_sites(STATEMENTS, "norm", operator)):
        m = mutate_at(STATEMENTS, "norm", operator, i)
        out[f"{m.description}#{i}"] = m.source
    return out


def _body(source: str) -> str:
    return ast.unparse(find_function(ast.parse(source), "norm").body[1:])


def test_remove_condition_keeps_the_body_or_drops_a_branch() -> None:
    variants = list(_all("remove_condition").values())
    assert len(variants) == 3
    keep = "    for w in parts:\n        words.append(w[:limit])\n    while"
    assert sum(keep in v for v in variants) == 1  # the `if` test dropped, its body dedented, elif/else gone
    assert sum("elif" not in v and "else" not in v and "if len(w) > limit:" in v for v in variants) == 1
    assert sum("elif not w:" in v and "else:" not in v for v in variants) == 1
    assert all("# keep this comment" in v for v in variants)


def test_remove_loop_deletes_a_whole_loop_but_never_empties_a_block() -> None:
    variants = _all("remove_loop")
    assert len(variants) == 2
    assert any("for w in parts" not in v and "words.append" not in v for v in variants.values())
    assert any("while not words" not in v and "break" not in v for v in variants.values())


def test_shuffle_statements_swaps_only_dependent_neighbours() -> None:
    variants = list(_all("shuffle_statements").values())
    assert len(variants) == 1  # `words = []` and `text = ...` are independent; `text` and `parts` are not
    assert "    parts = text.split()\n    text = text.strip().lower()  # keep this comment\n" in variants[0]


def test_break_call_chain_drops_one_link() -> None:
    bodies = {_body(v).split("\n")[1] for v in _all("break_call_chain").values()}
    assert {"text = text.strip()", "text = text.lower()"} <= bodies
    assert any("return sorted(words)" in _body(v) for v in _all("break_call_chain").values())


@pytest.mark.parametrize("operator", sorted(OPERATORS))
def test_every_site_is_valid_code_or_a_clear_error(operator: str) -> None:
    seen = set()
    for i in range(count_sites(STATEMENTS, "norm", operator)):
        try:
            m = mutate_at(STATEMENTS, "norm", operator, i)
        except MutationError:
            continue
        ast.parse(m.source)
        seen.add(m.source)
    assert STATEMENTS not in seen
    with pytest.raises(IndexError):
        mutate_at(STATEMENTS, "norm", operator, count_sites(STATEMENTS, "norm", operator))
