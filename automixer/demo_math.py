"""Procedurally generated math text for the demo: worked word problems and LaTeX derivations.

Every answer is computed (exact arithmetic with `fractions`, polynomial calculus with `fractions`), so the text is
correct; it stands in for a math corpus on machines that have none.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from fractions import Fraction

_NAMES = ["Ava", "Ben", "Chen", "Dara", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jade", "Kofi", "Lena"]
_ITEMS = [("apples", "baskets"), ("marbles", "jars"), ("books", "shelves"), ("stickers", "albums"), ("coins", "boxes")]


def _shopping(rng: random.Random) -> str:
    name = rng.choice(_NAMES)
    n, price, paid = rng.randint(3, 12), rng.randint(2, 15), 0
    cost = n * price
    paid = cost + rng.choice([5, 10, 20, 50])
    return (
        f"{name} buys {n} notebooks that cost ${price} each and pays with ${paid}. "
        f"How much change does {name} get?\n\n"
        f"The notebooks cost {n} × {price} = ${cost}. "
        f"The change is {paid} − {cost} = ${paid - cost}.\n#### {paid - cost}"
    )


def _sharing(rng: random.Random) -> str:
    name, friend = rng.sample(_NAMES, 2)
    item, holder = rng.choice(_ITEMS)
    per, boxes, gave = rng.randint(4, 20), rng.randint(2, 9), rng.randint(1, 15)
    total = per * boxes
    gave = min(gave, total - 1)
    return (
        f"{name} has {boxes} {holder} with {per} {item} in each. {name} gives {gave} {item} to {friend}. "
        f"How many {item} does {name} have left?\n\n"
        f"In total {name} has {boxes} × {per} = {total} {item}. "
        f"After giving {gave} away, {total} − {gave} = {total - gave} are left.\n#### {total - gave}"
    )


def _rate(rng: random.Random) -> str:
    speed, hours, extra = rng.randint(30, 90), rng.randint(2, 7), rng.randint(10, 60)
    d1 = speed * hours
    return (
        f"A train travels at {speed} km/h for {hours} hours and then {extra} km more. "
        f"How far does it travel?\n\nFirst part: {speed} × {hours} = {d1} km. "
        f"Total: {d1} + {extra} = {d1 + extra} km.\n#### {d1 + extra}"
    )


def _fractions(rng: random.Random) -> str:
    a = Fraction(rng.randint(1, 9), rng.randint(2, 12))
    b = Fraction(rng.randint(1, 9), rng.randint(2, 12))
    while a.denominator == 1 or b.denominator == 1:
        a, b = a + Fraction(1, 7), b + Fraction(1, 5)
    op = rng.choice(["+", "-", r"\times"])
    res = a + b if op == "+" else a - b if op == "-" else a * b
    lcm = a.denominator * b.denominator
    steps = (
        rf"\frac{{{a.numerator * b.denominator}}}{{{lcm}}} {op} \frac{{{b.numerator * a.denominator}}}{{{lcm}}}"
        if op in "+-"
        else rf"\frac{{{a.numerator} \cdot {b.numerator}}}{{{a.denominator} \cdot {b.denominator}}}"
    )
    return (
        rf"Compute $\frac{{{a.numerator}}}{{{a.denominator}}} {op} \frac{{{b.numerator}}}{{{b.denominator}}}$."
        "\n\n"
        rf"We have $\frac{{{a.numerator}}}{{{a.denominator}}} {op} \frac{{{b.numerator}}}{{{b.denominator}}} = "
        rf"{steps} = \frac{{{res.numerator}}}{{{res.denominator}}}$."
    )


def _linear(rng: random.Random) -> str:
    a, x, b = rng.choice([2, 3, 4, 5, 6, 7, -2, -3]), rng.randint(-12, 12), rng.randint(-30, 30)
    c = a * x + b
    return (
        f"Solve for $x$: ${a}x {'+' if b >= 0 else '-'} {abs(b)} = {c}$.\n\n"
        "\\begin{align*}\n"
        f"{a}x &= {c} {'-' if b >= 0 else '+'} {abs(b)} = {c - b} \\\\\n"
        f"x &= \\frac{{{c - b}}}{{{a}}} = {x}\n"
        "\\end{align*}\n"
        f"Check: ${a} \\cdot ({x}) {'+' if b >= 0 else '-'} {abs(b)} = {c}$."
    )


def _poly_latex(coefs: dict[int, Fraction]) -> str:
    terms = []
    for p in sorted(coefs, reverse=True):
        c = coefs[p]
        if c == 0:
            continue
        mag = abs(c)
        num = (
            ""
            if mag == 1 and p
            else (str(mag) if mag.denominator == 1 else rf"\frac{{{mag.numerator}}}{{{mag.denominator}}}")
        )
        var = "" if p == 0 else "x" if p == 1 else f"x^{{{p}}}"
        terms.append(("- " if c < 0 else "+ ") + num + var)
    text = " ".join(terms) or "0"
    return text[2:] if text.startswith("+ ") else "-" + text[2:] if text.startswith("- ") else text


def _fmt(v: Fraction) -> str:
    return str(v) if v.denominator == 1 else rf"\frac{{{v.numerator}}}{{{v.denominator}}}"


def _calculus(rng: random.Random) -> str:
    poly = {p: Fraction(rng.randint(-6, 6)) for p in range(rng.randint(1, 4) + 1)}
    poly[max(poly)] = Fraction(rng.choice([1, 2, 3, 4, 5, -2, -3]))
    a, fn = rng.randint(2, 5), rng.choice(["sin", "cos", "exp"])
    if rng.random() < 0.5:
        deriv = {p - 1: c * p for p, c in poly.items() if p > 0}
        outer = {"sin": rf"{a}\cos({a}x)", "cos": rf"-{a}\sin({a}x)", "exp": rf"{a}e^{{{a}x}}"}[fn]
        inner = {"sin": rf"\sin({a}x)", "cos": rf"\cos({a}x)", "exp": rf"e^{{{a}x}}"}[fn]
        return (
            f"Differentiate $f(x) = {_poly_latex(poly)} + {inner}$.\n\n"
            f"Term by term, and by the chain rule for ${inner}$: $f'(x) = {_poly_latex(deriv)} {'-' if fn == 'cos' else '+'} {outer}$."
        )
    lo, hi = sorted(rng.sample(range(-3, 5), 2))
    anti = {p + 1: c / (p + 1) for p, c in poly.items()}
    value = sum(c * (Fraction(hi) ** p - Fraction(lo) ** p) for p, c in anti.items())
    return (
        f"Evaluate $\\int_{{{lo}}}^{{{hi}}} \\left({_poly_latex(poly)}\\right)\\,dx$.\n\n"
        f"An antiderivative is $F(x) = {_poly_latex(anti)}$, so the integral is "
        f"$F({hi}) - F({lo}) = {_fmt(value)}$."
    )


_GENERATORS: list[Callable[[random.Random], str]] = [_shopping, _sharing, _rate, _fractions, _linear, _calculus]


def generate_math_docs(n_docs: int, seed: int = 0, problems_per_doc: int = 6) -> Iterator[dict]:
    """Yield `n_docs` math documents (`id`, `text`), each a short worksheet of solved problems."""
    rng = random.Random(seed)
    for i in range(n_docs):
        title = rng.choice(["Worked examples", "Practice set", "Solutions", "Exercises with answers"])
        problems = [rng.choice(_GENERATORS)(rng) for _ in range(problems_per_doc)]
        body = "\n\n".join(f"Problem {k + 1}. {p}" for k, p in enumerate(problems))
        yield {"id": f"math-gen-{seed}-{i:06d}", "text": f"{title} {i + 1}\n\n{body}\n"}
