"""Dedup and decontamination of synth tasks against the real HumanEval, MBPP and MBPP+ files."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from automixer.config import EvalSetConfig
from automixer.curate.decontam import load_eval_code
from synth.discover import _corpus_records, source_from_text
from synth.draft import Draft
from synth.render import function_source
from synth.screen import Deduper, EvalCodeIndex, Match, Screen, ScreenReport, normalized_ast_hash, normalized_diff
from synth.task import Task, make_patch

CORPUS = "code/code_corpus_python.jsonl.gz"

HUMANEVAL_0_RENAMED = '''
def any_pair_near(values, eps):
    """Tell whether two different entries of `values` are nearer than `eps` to each other."""
    # compare every ordered pair
    for a, first in enumerate(values):
        for b, second in enumerate(values):
            if a != b:
                gap = abs(first - second)
                if gap < eps: return True
    return False
'''

MBPP_61_EDITED = """
from collections import defaultdict
def count_Substrings(s):
    n = len(s)
    if n == 0:
        return 0
    count,sum = 0,0
    mp = defaultdict(int)
    mp[0] += 1
    for i in range(n):
        sum += ord(s[i]) - ord('0')
        count += mp[sum - (i + 1)]
        mp[sum - (i + 1)] += 1
    return count
"""


@pytest.fixture(scope="module")
def index(shared_data: Path) -> EvalCodeIndex:
    """HumanEval, MBPP and MBPP+ reference code (MBPP+ through the config's `mbppplus` spelling)."""
    ev = shared_data / "evalsets"
    return EvalCodeIndex.from_configs(
        [
            EvalSetConfig(name="humaneval", path=str(ev / "HumanEval.jsonl.gz")),
            EvalSetConfig(name="mbpp", path=str(ev / "sanitized-mbpp.json")),
            EvalSetConfig(name="mbpp_plus", path=str(ev / "MbppPlus_evalplus_2023-11.jsonl"), format="mbppplus"),
        ]
    )


@pytest.fixture(scope="module")
def algorithms(shared_data: Path) -> dict[str, str]:
    """rel path -> text of the real TheAlgorithms files."""
    records = _corpus_records(shared_data / CORPUS)
    return {rel: text for rel, repo, _, text in records if repo == "TheAlgorithms/Python"}


def test_hash_ignores_names_format_docstrings_annotations() -> None:
    a = 'def f(xs: list[int], k: int = 2) -> int:\n    """Doc."""\n    t = 0  # c\n    for x in xs:\n        t += x * k\n    return t\n'
    b = "def g(v, m=2):\n    s = 0\n    for y in v: s += y*m\n    return s\n"
    assert normalized_ast_hash(a) == normalized_ast_hash(b) is not None
    assert normalized_ast_hash("    def g(v, m=2):\n        return v\n") is not None  # indented method text
    changed = {
        "operator": b.replace("y*m", "y+m"),
        "builtin": "def g(v, m=2):\n    s = 0\n    for y in sorted(v): s += y*m\n    return s\n",
        "attribute": "def g(v, m=2):\n    return v.upper()\n",
        "constant": b.replace("s = 0", "s = 1"),
    }
    hashes = {k: normalized_ast_hash(src) for k, src in changed.items()}
    assert normalized_ast_hash(b) not in hashes.values() and len(set(hashes.values())) == len(hashes)
    assert normalized_ast_hash("def g(v):\n    return v.lower()\n") != hashes["attribute"]
    shadow = "def f(list):\n    return list + 1\n", "def f(items):\n    return items + 1\n"
    assert normalized_ast_hash(shadow[0]) == normalized_ast_hash(shadow[1])  # a parameter named like a builtin
    assert normalized_ast_hash("x = 1\n") is None and normalized_ast_hash("def (:\n") is None


def test_renamed_humaneval_solution_is_caught_by_the_ast_hash(index: EvalCodeIndex) -> None:
    screen = Screen(index, 10, 0.5)
    match = screen.check(HUMANEVAL_0_RENAMED, "planted/near.py")
    assert match == Match("humaneval", "HumanEval/0", "ast_hash", 1.0)
    assert screen.report()["contaminated"]["humaneval"]["ast_hash"]["pairs"] == [
        ["planted/near.py::any_pair_near", "HumanEval/0"]
    ]


def test_edited_mbpp_solution_is_caught_by_ngrams(index: EvalCodeIndex, shared_data: Path) -> None:
    original = dict(load_eval_code(shared_data / "evalsets" / "sanitized-mbpp.json").items)["61"]
    assert original.replace("defaultdict(lambda : 0)", "defaultdict(int)") != original
    screen = Screen(index, 10, 0.5)
    match = screen.check(MBPP_61_EDITED)
    assert match is not None and (match.eval_set, match.eval_id, match.kind) == ("mbpp", "61", "ngram")
    assert 0.5 < match.overlap < 1.0
    assert Screen(index, 10, 0.95).check(MBPP_61_EDITED) is None  # the threshold is honoured
    assert normalized_ast_hash(MBPP_61_EDITED.split("\n", 2)[2]) not in index.hashes


def test_unrelated_real_function_is_clean(index: EvalCodeIndex, algorithms: dict[str, str]) -> None:
    rel = "TheAlgorithms/Python/ciphers/caesar_cipher.py"
    source = function_source(algorithms[rel], "encrypt")
    screen = Screen(index, 10, 0.5)
    assert screen.check(source, rel) is None
    report = screen.report()
    assert (report["functions_checked"], report["contaminated_total"], report["contaminated"]) == (1, 0, {})


def test_thealgorithms_doctest_functions_flag_rate(index: EvalCodeIndex, algorithms: dict[str, str]) -> None:
    """Few TheAlgorithms functions copy a benchmark; the ones that do are real copies (pancake sort, MBPP 141)."""
    screen = Screen(index, 10, 0.5)
    for rel, text in sorted(algorithms.items()):
        sf = source_from_text(rel, text, Path(rel), "TheAlgorithms/Python", "")
        for qualname in sf.functions if sf else ():
            screen.check(function_source(sf.text, qualname), rel)
    report = screen.report()
    assert report["functions_checked"] > 1000
    assert 1 <= report["contaminated_total"] <= 0.01 * report["functions_checked"]
    assert ["TheAlgorithms/Python/sorts/pancake_sort.py::pancake_sort", "141"] in report["contaminated"]["mbpp"][
        "ast_hash"
    ]["pairs"]
    assert json.loads(json.dumps(report)) == report


def test_index_loading_rules(shared_data: Path, tmp_path: Path) -> None:
    ev = shared_data / "evalsets"
    with pytest.raises(ValueError, match="no reference code"):
        EvalCodeIndex.from_configs([EvalSetConfig(name="gsm", path=str(ev / "gsm8k_test.jsonl"))])
    with pytest.raises(ValueError, match="unique"):
        EvalCodeIndex([("a", []), ("a", [])])
    empty = Screen(EvalCodeIndex.from_configs([]), 10, 0.5)
    assert empty.check(HUMANEVAL_0_RENAMED) is None and empty.findings.functions_checked == 1


def _draft(path: str, fixed: str, broken: str) -> Draft:
    name = "mod.py"
    return Draft(
        family="bugfix", source_path=path, repo="r", commit="c", module="mod", function="clip", operators=("op",),
        seed=0, description="", broken={name: broken}, fixed={name: fixed}, targets=(name,), scope_file=name,
    )  # fmt: skip


CLIP = 'def clip(x, lo, hi):\n    """Clip.\n\n    >>> clip(5, 0, 3)\n    3\n    """\n    if x < lo:\n        return lo\n    return min(x, hi)\n'


def test_dedup_keys_and_report() -> None:
    copy = "# another file\n\n\n" + CLIP.replace('"""Clip.', '"""Clamp x.').replace("    if x", "    if  x")
    a = _draft("a.py", CLIP, CLIP.replace("x < lo", "x <= lo"))
    b = _draft("b.py", copy, copy.replace("x < lo", "x <= lo"))
    c = _draft("c.py", CLIP, CLIP.replace("min(x, hi)", "max(x, hi)"))
    task = Task(
        task_id="t", source_path="a.py", module="mod", function="clip", operator="op", seed=0, description="",
        files=dict(a.broken), gold_patch=make_patch(a.broken, a.fixed),
    )  # fmt: skip
    report = ScreenReport()
    dd = Deduper(report)
    keys = [dd.key(d) for d in (a, b, c, task)]
    assert keys[0] == keys[1] == keys[3] != keys[2]
    assert [dd.seen(k) for k in keys] == [False, True, False, True]
    assert report.to_dict()["duplicates"] == [["a.py::clip", "a.py::clip"], ["b.py::clip", "a.py::clip"]]
    assert report.to_dict()["duplicates_dropped"] == 2
    assert normalized_diff(task.gold_patch) == "-if x <= lo:\n+if x < lo:"


def test_seen_is_thread_safe() -> None:
    dd = Deduper()
    results: list[bool] = []
    lock = threading.Lock()

    def work() -> None:
        for i in range(200):
            flag = dd.seen(f"k{i}")
            with lock:
                results.append(flag)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(False) == 200 and results.count(True) == 7 * 200
    assert dd.report.to_dict()["duplicates_dropped"] == 7 * 200
