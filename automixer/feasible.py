"""The feasible set of mixtures: the simplex cut by named linear constraints and an optional trust region."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np

from automixer.config import ConstraintsConfig

TOL = 1e-9
"""Slack allowed when checking a mixture against the constraints (sums, bounds, groups, radius)."""


def kl_divergence(W: np.ndarray, p: np.ndarray) -> np.ndarray:
    """KL(w || p) in nats for each row w of W (0 log 0 = 0)."""
    W = np.clip(np.atleast_2d(np.asarray(W, dtype=float)), 0.0, None)
    log_p = np.log(np.clip(np.asarray(p, dtype=float), 1e-12, None))
    return (W * (np.log(np.where(W > 0, W, 1.0)) - log_p)).sum(axis=1)


@dataclass(frozen=True)
class Constraint:
    """One named linear constraint: `coef . w` compared (`sense`) with `bound`."""

    name: str
    coef: np.ndarray
    sense: Literal[">=", "<=", "=="]
    bound: float

    def residual(self, W: np.ndarray) -> np.ndarray:
        """How far each row violates the constraint (<= 0: satisfied)."""
        v = np.atleast_2d(W) @ self.coef - self.bound
        return {">=": -v, "<=": v, "==": np.abs(v)}[self.sense]


@dataclass(frozen=True)
class TrustRegion:
    """The ball {w : distance(w, natural) <= radius}; distance is KL(w || natural) or the L1 norm of w - natural."""

    natural: np.ndarray
    metric: Literal["kl", "l1"]
    radius: float

    @property
    def name(self) -> str:
        """The name used in messages."""
        return f"trust_region.{self.metric}<={self.radius:g} of the natural mixture"

    def distance(self, W: np.ndarray) -> np.ndarray:
        """The distance of each row to the natural mixture."""
        W = np.atleast_2d(W)
        return np.abs(W - self.natural).sum(axis=1) if self.metric == "l1" else kl_divergence(W, self.natural)

    def gradient(self, w: np.ndarray) -> np.ndarray:
        """Gradient (a subgradient for L1) of the distance at one mixture."""
        if self.metric == "l1":
            return np.sign(w - self.natural)
        return np.log(np.clip(w, 1e-12, None) / np.clip(self.natural, 1e-12, None)) + 1.0


class InfeasibleError(ValueError):
    """No mixture meets the constraints; `conflict` names a minimal set of them that cannot hold together."""

    def __init__(self, conflict: list[str], detail: str) -> None:
        self.conflict = conflict
        super().__init__(f"infeasible constraints: {' + '.join(conflict)} {detail}")


class FeasibleSet:
    """Mixtures over `domains` (w >= 0, sum 1) meeting every constraint: exact checks, samples and repairs."""

    def __init__(self, domains: list[str], constraints: list[Constraint] = (), trust: TrustRegion | None = None):
        self.domains = list(domains)
        self.constraints = list(constraints)
        self.trust = trust
        k = len(self.domains)
        self.lo, self.hi = np.zeros(k), np.ones(k)
        for c in self.constraints:  # single-domain constraints tighten the box
            nz = np.flatnonzero(c.coef)
            if len(nz) == 1 and c.coef[nz[0]] > 0:
                i, v = nz[0], c.bound / c.coef[nz[0]]
                if c.sense in (">=", "=="):
                    self.lo[i] = max(self.lo[i], v)
                if c.sense in ("<=", "=="):
                    self.hi[i] = min(self.hi[i], v)
        self._cache: dict = {}

    # ----- exact feasibility (LP / convex minimisation) and the minimal conflicting set
    def _lp(self, idx: list[int], objective: np.ndarray | None = None, l1: float | None = None) -> np.ndarray | None:
        """A vertex of the simplex cut by constraints `idx` (minimising `objective`), optionally within L1 `l1`."""
        from scipy.optimize import linprog

        k = len(self.domains)
        n = 2 * k if l1 is not None else k
        A_ub, b_ub, A_eq, b_eq = [], [], [np.r_[np.ones(k), np.zeros(n - k)]], [1.0]
        for i in idx:
            c = self.constraints[i]
            row = np.r_[c.coef, np.zeros(n - k)]
            if c.sense == "==":
                A_eq.append(row)
                b_eq.append(c.bound)
            else:
                s = 1.0 if c.sense == "<=" else -1.0
                A_ub.append(s * row)
                b_ub.append(s * c.bound)
        cost = np.zeros(n) if objective is None else np.r_[objective, np.zeros(n - k)]
        if l1 is not None:  # t_i >= |w_i - natural_i|, and sum t <= l1 (l1 = inf: minimise sum t)
            p, eye = self.trust.natural, np.eye(k)
            A_ub += [*np.hstack([eye, -eye]), *np.hstack([-eye, -eye])]
            b_ub += [*p, *(-p)]
            if np.isfinite(l1):
                A_ub.append(np.r_[np.zeros(k), np.ones(k)])
                b_ub.append(l1)
            else:
                cost[k:] = 1.0
        res = linprog(
            cost,
            A_ub=np.array(A_ub) if A_ub else None,
            b_ub=np.array(b_ub) if b_ub else None,
            A_eq=np.array(A_eq),
            b_eq=np.array(b_eq),
            bounds=[(0.0, 1.0)] * n,
            method="highs",
        )
        return res.x[:k] if res.status == 0 else None

    def _closest_to_natural(self, idx: list[int]) -> tuple[np.ndarray, float] | None:
        """The mixture meeting constraints `idx` nearest the natural one (trust metric), and its distance."""
        from scipy.optimize import minimize

        x0 = self._lp(idx)
        if x0 is None:
            return None
        tr = self.trust
        if tr.metric == "l1":
            x = self._lp(idx, l1=np.inf)
            return x, float(tr.distance(x)[0])
        cons = self.scipy_constraints(idx, trust=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = minimize(
                lambda w: float(tr.distance(w)[0]), x0, jac=tr.gradient, method="SLSQP",
                bounds=[(0.0, 1.0)] * len(x0), constraints=cons, options={"maxiter": 300, "ftol": 1e-14},
            )  # fmt: skip
        x = res.x if self._linear_ok(res.x[None, :], idx, 1e-7)[0] else x0
        return x, float(tr.distance(x)[0])

    def _feasible(self, items: list[int | str]) -> bool:
        idx = [i for i in items if isinstance(i, int)]
        if "trust" not in items:
            return self._lp(idx) is not None
        best = self._closest_to_natural(idx)
        return best is not None and best[1] <= self.trust.radius * (1 + 1e-6) + TOL

    def check(self) -> None:
        """Raise InfeasibleError naming a minimal conflicting set of constraints when no mixture meets them all."""
        items: list[int | str] = [*range(len(self.constraints)), *(["trust"] if self.trust else [])]
        if self._cache.get("checked") or self._feasible(items):
            self._cache["checked"] = True
            return
        for item in list(items):  # deletion filter: drop each constraint the conflict survives without
            trial = [x for x in items if x != item]
            if not self._feasible(trial):
                items = trial
        names = [self.trust.name if i == "trust" else self.constraints[i].name for i in items]
        raise InfeasibleError(names, self._explain(items))

    def _explain(self, items: list[int | str]) -> str:
        if "trust" in items:
            best = self._closest_to_natural([i for i in items if i != "trust"])
            dist = f"{best[1]:.4g}" if best else "?"
            return f"conflict: the closest mixture meeting the others is at {self.trust.metric}={dist}"
        cons = [self.constraints[i] for i in items]
        supports = [set(np.flatnonzero(c.coef)) for c in cons]
        unit = all(np.isin(c.coef, (0.0, 1.0)).all() for c in cons)
        disjoint = sum(map(len, supports)) == len(set().union(*supports))
        total = sum(c.bound for c in cons)
        if unit and disjoint and all(c.sense in (">=", "==") for c in cons) and total > 1:
            return f"need at least {total:.4g} > 1 of the total weight"
        if unit and disjoint and all(c.sense in ("<=", "==") for c in cons) and total < 1:
            return f"allow at most {total:.4g} < 1 of the total weight"
        uppers = [i for i, c in enumerate(cons) if c.sense == "<="]
        if unit and len(uppers) == 1 and len(cons) > 1:
            u = uppers[0]
            rest = [i for i in range(len(cons)) if i != u]
            need = sum(cons[i].bound for i in rest)
            own = set().union(*(supports[i] for i in rest))
            if sum(len(supports[i]) for i in rest) == len(own) and own <= supports[u] and need > cons[u].bound:
                return f"need at least {need:.4g} > {cons[u].bound:.4g} allowed by {cons[u].name}"
        return "cannot all hold with weights that sum to 1"
        return "cannot all hold with weights that sum to 1"

    # ----- geometry: affine hull, interior centre, radial pull, sampling
    def _linear_ok(self, W: np.ndarray, idx: list[int] | None = None, tol: float = TOL) -> np.ndarray:
        W = np.atleast_2d(W)
        ok = (W >= -tol).all(axis=1) & (np.abs(W.sum(axis=1) - 1.0) <= tol)
        for i in range(len(self.constraints)) if idx is None else idx:
            ok &= self.constraints[i].residual(W) <= tol
        return ok

    def contains(self, W: np.ndarray, tol: float = TOL) -> np.ndarray:
        """Which rows of W are feasible mixtures (within `tol`)."""
        ok = self._linear_ok(W, None, tol)
        if self.trust is not None:
            ok &= self.trust.distance(W) <= self.trust.radius + tol
        return ok

    def _geometry(self) -> dict:
        """Equalities (affine hull), inequality rows G w <= h that vary on it, LP vertices and an interior centre."""
        if "geo" in self._cache:
            return self._cache["geo"]
        self.check()
        k = len(self.domains)
        eqs = [(np.ones(k), 1.0)] + [(c.coef, c.bound) for c in self.constraints if c.sense == "=="]
        for i in np.flatnonzero(self.hi - self.lo <= 1e-15):
            eqs.append((np.eye(k)[i], self.lo[i]))
        A, b = np.array([e[0] for e in eqs]), np.array([e[1] for e in eqs])
        A_pinv = np.linalg.pinv(A)
        P = np.eye(k) - A_pinv @ A  # projector onto directions that keep every equality
        rows = [(-np.eye(k)[i], 0.0) for i in range(k)]
        for c in self.constraints:
            if c.sense != "==":
                s = 1.0 if c.sense == "<=" else -1.0
                rows.append((s * c.coef, s * c.bound))
        rows = [(g, h) for g, h in rows if np.linalg.norm(P @ g) > 1e-12]
        G = np.array([g for g, _ in rows]).reshape(-1, k)
        H = np.array([h for _, h in rows])
        every = list(range(len(self.constraints)))
        dirs = [*np.eye(k), *(-np.eye(k)), *np.random.default_rng(0).normal(size=(2 * k, k))]
        V = np.array([v for v in (self._lp(every, objective=d) for d in dirs) if v is not None])
        centre = V.mean(axis=0)
        if self.trust is not None:
            near, _ = self._closest_to_natural(every)
            s = self._trust_step(near[None, :], (centre - near)[None, :], np.ones(1))
            centre = near + 0.5 * s[0] * (centre - near)
        self._cache["geo"] = geo = {"A": A, "b": b, "A_pinv": A_pinv, "P": P, "G": G, "H": H, "V": V, "c": centre}
        return geo

    def _trust_step(self, X: np.ndarray, D: np.ndarray, smax: np.ndarray, iters: int = 40) -> np.ndarray:
        """The largest s in [0, smax] per row with X + s D inside the trust region (X inside), by bisection."""
        if self.trust is None:
            return smax
        r = self.trust.radius
        out = smax.copy()
        bad = np.flatnonzero(self.trust.distance(X + smax[:, None] * D) > r)
        if len(bad):
            Xb, Db = X[bad], D[bad]
            lo, hi = np.zeros(len(bad)), smax[bad].copy()
            for _ in range(iters):
                mid = 0.5 * (lo + hi)
                inside = self.trust.distance(Xb + mid[:, None] * Db) <= r
                lo, hi = np.where(inside, mid, lo), np.where(inside, hi, mid)
            out[bad] = lo
        return out

    def _to_hull(self, V: np.ndarray) -> np.ndarray:
        g = self._geometry()
        return V - (V @ g["A"].T - g["b"]) @ g["A_pinv"].T

    def pull(self, V: np.ndarray) -> np.ndarray:
        """Move each row onto the affine hull, then along the ray from the interior centre until it is feasible."""
        g = self._geometry()
        c = g["c"]
        D = self._to_hull(np.atleast_2d(np.asarray(V, dtype=float))) - c
        GD = D @ g["G"].T
        slack = np.clip(g["H"] - g["G"] @ c, 0.0, None)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(GD > 1e-15, slack / GD, np.inf)
        s = np.minimum(1.0, ratio.min(axis=1, initial=np.inf))
        s = self._trust_step(np.tile(c, (len(D), 1)), D, s)
        return c + s[:, None] * D

    def _hit_and_run(self, n_chains: int, steps: int, rng: np.random.Generator) -> np.ndarray:
        """Feasible points from hit-and-run chains started at the centre (all states after a short burn-in)."""
        g = self._geometry()
        k = len(self.domains)
        X = np.tile(g["c"], (n_chains, 1))
        out = []
        for step in range(steps):
            D = rng.normal(size=(n_chains, k)) @ g["P"].T
            D /= np.linalg.norm(D, axis=1, keepdims=True) + 1e-300
            GD = D @ g["G"].T
            slack = np.clip(g["H"][None, :] - X @ g["G"].T, 0.0, None)
            with np.errstate(divide="ignore", invalid="ignore"):
                tmax = np.where(GD > 1e-15, slack / GD, np.inf).min(axis=1, initial=1.0)
                tmin = np.where(GD < -1e-15, slack / GD, -np.inf).max(axis=1, initial=-1.0)
            tmax = self._trust_step(X, D, np.maximum(tmax, 0.0))
            tmin = -self._trust_step(X, -D, np.maximum(-tmin, 0.0))
            X = X + rng.uniform(tmin, tmax)[:, None] * D
            if step >= steps // 4:
                out.append(X)
        return np.vstack(out) if out else X

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """About `n` feasible mixtures: the centre, LP vertices, hit-and-run points and pulled Dirichlet draws."""
        g = self._geometry()
        k = len(self.domains)
        n_hr = n // 2
        chains = max(1, n_hr // 16)
        flat = rng.dirichlet(np.ones(k), size=(n - n_hr) - (n - n_hr) // 3)
        corner = rng.dirichlet(np.full(k, 0.2), size=(n - n_hr) // 3)
        V = g["V"] if self.trust is None else self.pull(g["V"])
        W = np.vstack([g["c"][None, :], V, self._hit_and_run(chains, 20, rng), self.pull(np.vstack([flat, corner]))])
        return self.repair(W)

    def repair(self, W: np.ndarray, snap: float = TOL) -> np.ndarray:
        """Make each row exactly feasible: pull it in if needed, snap values within `snap` of a bound onto it."""
        W = np.atleast_2d(np.asarray(W, dtype=float))
        bad = ~self.contains(W, 0.0)
        if bad.any():
            W = W.copy()
            W[bad] = self.pull(W[bad])
        lo, hi = self.lo, self.hi
        S = np.where(np.abs(W - lo) <= snap, lo, np.where(np.abs(W - hi) <= snap, hi, W))
        S = np.clip(S, lo, hi)
        free = (S > lo) & (S < hi)
        resid = 1.0 - S.sum(axis=1)
        room = np.where(free, np.where(resid[:, None] > 0, hi - S, S - lo), -1.0)
        j = room.argmax(axis=1)
        rows = np.arange(len(S))
        S[rows, j] = np.clip(S[rows, j] + resid * (room[rows, j] >= np.abs(resid)), lo[j], hi[j])
        keep = self.contains(S)
        return np.where(keep[:, None], S, W)

    def scipy_constraints(self, idx: list[int] | None = None, trust: bool = True) -> list[dict]:
        """The sum, the linear constraints `idx` (default: all) and the trust region as SLSQP dicts, with Jacobians."""
        k = len(self.domains)
        cons: list[dict] = [{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones(k)}]
        for i in range(len(self.constraints)) if idx is None else idx:
            c = self.constraints[i]
            s = -1.0 if c.sense == "<=" else 1.0
            kind = "eq" if c.sense == "==" else "ineq"
            cons.append(
                {
                    "type": kind,
                    "fun": lambda w, c=c, s=s: s * (c.coef @ w - c.bound),
                    "jac": lambda w, c=c, s=s: s * c.coef,
                }
            )
        if trust and self.trust is not None:
            tr = self.trust
            cons.append(
                {"type": "ineq", "fun": lambda w: tr.radius - tr.distance(w)[0], "jac": lambda w: -tr.gradient(w)}
            )
        return cons


def repetition_caps(
    domains: list[str], ratio: float | dict[str, float] | None, full_run_tokens: int | None, available: dict[str, int]
) -> dict[str, float]:
    """Per-domain weight caps available_tokens * max_repetition_ratio / full_run_tokens (only capped domains)."""
    if ratio is None or not full_run_tokens:
        return {}
    ratios = ratio if isinstance(ratio, dict) else dict.fromkeys(domains, ratio)
    missing = sorted(d for d in ratios if d not in available)
    if missing:
        raise ValueError(
            f"max_repetition_ratio needs the available tokens of {missing}: none in the shards manifest or in "
            "constraints.available_tokens"
        )
    return {d: min(1.0, available[d] * r / full_run_tokens) for d, r in ratios.items()}


def feasible_set(
    domains: list[str],
    cfg: ConstraintsConfig,
    natural: dict[str, float] | None = None,
    available_tokens: dict[str, int] | None = None,
) -> FeasibleSet:
    """The feasible set a ConstraintsConfig describes over `domains`, each constraint named as in the config."""
    unknown = sorted(cfg.named_domains() - set(domains))
    if unknown:
        raise ValueError(f"constraints name unknown domain(s) {unknown}; domains are {domains}")
    k = len(domains)
    unit = {d: np.eye(k)[i] for i, d in enumerate(domains)}
    cons = [Constraint(f"min_weight.{d}={v:g}", unit[d], ">=", v) for d, v in cfg.min_weight.items() if v > 0]
    cons += [Constraint(f"max_weight.{d}={v:g}", unit[d], "<=", v) for d, v in cfg.max_weight.items() if v < 1]
    cons += [Constraint(f"pinned.{d}={v:g}", unit[d], "==", v) for d, v in cfg.pinned.items()]
    for g in cfg.groups:
        coef = sum(unit[d] for d in g.domains)
        if g.min > 0:
            cons.append(Constraint(f"group '{g.name}'>={g.min:g}", coef, ">=", g.min))
        if g.max < 1:
            cons.append(Constraint(f"group '{g.name}'<={g.max:g}", coef, "<=", g.max))
    available = {**(available_tokens or {}), **cfg.available_tokens}
    ratio = cfg.max_repetition_ratio
    for d, cap in repetition_caps(domains, ratio, cfg.full_run_tokens, available).items():
        r = ratio[d] if isinstance(ratio, dict) else ratio
        name = f"max_repetition.{d}<={cap:.4g} ({available[d]} tokens x {r:g} / {cfg.full_run_tokens})"
        cons.append(Constraint(name, unit[d], "<=", cap))
    trust = None
    tr = cfg.trust_region
    if tr is not None and tr.radius is not None:
        if natural is None:
            raise ValueError("constraints.trust_region needs the natural mixture (from the sweep, or given)")
        trust = TrustRegion(np.array([natural[d] for d in domains], dtype=float), tr.metric, tr.radius)
    return FeasibleSet(domains, cons, trust)
