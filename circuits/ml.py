"""Model training over rows held by several parties: linear and logistic regression.

Each party holds some rows (features ``X`` and target ``y``); the parties learn the fitted
coefficients and nothing else about each other's rows.

* Linear regression solves the normal equations (X^T X / n) w = X^T y / n (plus an intercept
  column, plus ``ridge`` on the diagonal) by Gauss-Jordan elimination with one secure
  reciprocal per pivot: no pivoting, so the system must be well conditioned (standardise the
  features). X^T X is one secure matrix product, truncated once per entry: every entry of
  X^T X and X^T y must stay below 2^30 (n * max x^2 < 2^30).
* Logistic regression runs mini-batch gradient descent in fixed point: sigmoid of a secure
  matrix product, gradient X_b^T (p - y_b) / |b|, update w <- w - lr * (grad + l2 w). The
  batches are consecutive row ranges in the order of the parties, without shuffling, so
  :func:`reference_logistic_regression` (the same algorithm in float64) is comparable step by
  step. Inference: :mod:`smc.circuits.inference`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import smc
from smc.errors import ProgramError

from .base import BuiltProgram
from .blocks import divide_public, secret_const
from .cost import program_cost


@dataclass(frozen=True)
class LinearRegressionSpec:
    features: int
    fit_intercept: bool = True
    ridge: float = 0.0

    def __post_init__(self) -> None:
        if self.features < 1 or self.ridge < 0:
            raise ProgramError("linear regression needs features >= 1 and ridge >= 0")


@dataclass(frozen=True)
class LogisticRegressionSpec:
    features: int
    epochs: int = 10
    batch_size: int = 1000
    learning_rate: float = 0.5
    l2: float = 0.0
    fit_intercept: bool = True

    def __post_init__(self) -> None:
        if self.features < 1 or self.epochs < 1 or self.batch_size < 1:
            raise ProgramError("logistic regression needs features, epochs, batch_size >= 1")
        if not 0 < self.learning_rate <= 16 or self.l2 < 0:
            raise ProgramError("learning_rate must be in (0, 16] and l2 >= 0")


def _rows(
    b: smc.ProgramBuilder, rows: Mapping[str, int], d: int
) -> tuple[smc.SecureArray, smc.SecureArray, int]:
    holders = [p for p, r in rows.items() if r > 0]
    if not holders:
        raise ProgramError("training needs at least one party with rows")
    x = smc.concatenate([b.input(p, "X", (rows[p], d)) for p in holders])
    y = smc.concatenate([b.input(p, "y", (rows[p],)) for p in holders])
    return x, y, sum(rows[p] for p in holders)


# -------------------------------------------------------------------------- linear regression


def build_linear_regression(
    rows: Mapping[str, int],
    spec: LinearRegressionSpec,
    parties: Sequence[str] | None = None,
    to: str | Sequence[str] | None = None,
    frac_bits: int = 16,
) -> BuiltProgram:
    """Program fitting y ~ X w (+ intercept). Each party in ``rows`` binds ``X`` (r, features)
    and ``y`` (r,). Outputs ``coef`` (features,) and, with an intercept, ``intercept``."""
    b = smc.ProgramBuilder(list(parties or rows), frac_bits)
    x, y, n = _rows(b, rows, spec.features)
    gram = x.T @ x
    moment = x.T @ y
    if spec.fit_intercept:
        sx = x.sum(axis=0)
        corner = secret_const(x, np.full((1, 1), float(n)))
        gram = smc.concatenate(
            [
                smc.concatenate([gram, sx.reshape(-1, 1)], axis=1),
                smc.concatenate([sx.reshape(1, -1), corner], axis=1),
            ]
        )
        moment = smc.concatenate([moment, y.sum().reshape(1)])
    k = gram.shape[0]
    system = smc.concatenate([gram, moment.reshape(-1, 1)], axis=1)
    system = divide_public(system, n)
    if spec.ridge:
        ridge = np.zeros((k, k + 1))
        ridge[np.arange(spec.features), np.arange(spec.features)] = spec.ridge
        system = system + ridge
    solution = gauss_jordan(system)
    b.output("coef", solution[: spec.features], to=to)
    if spec.fit_intercept:
        b.output("intercept", solution[spec.features], to=to)
    return BuiltProgram.of(b.build(), "linear_regression", rows=dict(rows), spec=spec)


def gauss_jordan(system: smc.SecureArray) -> smc.SecureArray:
    """Solve [A | b] (k, k + 1) without pivoting (A symmetric positive definite): per column,
    one secure reciprocal of the pivot, one scaled row, one rank-one update."""
    k = system.shape[0]
    m = system
    for j in range(k):
        row = m[j] * m[j, j].reciprocal()  # (k + 1,)
        update = m - m[:, j].reshape(-1, 1) * row.reshape(1, -1)
        parts = [update[:j]] if j else []
        parts.append(row.reshape(1, -1))
        if j + 1 < k:
            parts.append(update[j + 1 :])
        m = smc.concatenate(parts)
    return m[:, k]


def reference_linear_regression(
    x: np.ndarray, y: np.ndarray, spec: LinearRegressionSpec
) -> dict[str, Any]:
    """numpy.linalg.lstsq (ridge = 0) or the ridge normal equations, in float64."""
    xa = np.c_[x, np.ones(len(x))] if spec.fit_intercept else np.asarray(x, dtype=np.float64)
    if spec.ridge:
        k = xa.shape[1]
        reg = np.zeros((k, k))
        reg[np.arange(spec.features), np.arange(spec.features)] = spec.ridge
        w = np.linalg.solve(xa.T @ xa / len(x) + reg, xa.T @ y / len(x))
    else:
        w = np.linalg.lstsq(xa, y, rcond=None)[0]
    out: dict[str, Any] = {"coef": w[: spec.features]}
    if spec.fit_intercept:
        out["intercept"] = float(w[spec.features])
    return out


def cost_linear_regression(
    rows: Mapping[str, int],
    spec: LinearRegressionSpec,
    parties: Sequence[str] | None = None,
    suite: str | None = None,
    to: str | Sequence[str] | None = None,
) -> dict[str, Any]:
    """Declared rounds and bytes per party of :func:`build_linear_regression`."""
    return program_cost(build_linear_regression(rows, spec, parties, to).program, suite)


# ------------------------------------------------------------------------ logistic regression


def batches(n: int, size: int) -> list[tuple[int, int]]:
    return [(s, min(n, s + size)) for s in range(0, n, size)]


def build_logistic_regression(
    rows: Mapping[str, int],
    spec: LogisticRegressionSpec,
    parties: Sequence[str] | None = None,
    to: str | Sequence[str] | None = None,
    frac_bits: int = 16,
) -> BuiltProgram:
    """Program training logistic regression by mini-batch gradient descent. Each party in
    ``rows`` binds ``X`` (r, features) and ``y`` (r,) with labels 0/1. Outputs ``coef`` and,
    with an intercept, ``intercept``."""
    b = smc.ProgramBuilder(list(parties or rows), frac_bits)
    x, y, n = _rows(b, rows, spec.features)
    d = spec.features
    lr = spec.learning_rate
    decay = np.r_[np.full(d, 1.0 - lr * spec.l2), 1.0]
    theta: Any = b.const(np.zeros(d + 1))  # coefficients, then the intercept
    for _ in range(spec.epochs):
        for lo, hi in batches(n, spec.batch_size):
            xb, yb = x[lo:hi], y[lo:hi]
            z = xb @ theta[:d]
            if spec.fit_intercept:
                z = z + theta[d]
            err = z.sigmoid() - yb  # (batch,)
            grad = smc.concatenate([xb.T @ err, err.sum().reshape(1)])
            if not spec.fit_intercept:
                grad = grad * np.r_[np.ones(d, dtype=np.int64), 0]
            kept = theta * decay if spec.l2 else theta
            theta = kept - grad * (lr / (hi - lo))
    b.output("coef", theta[:d], to=to)
    if spec.fit_intercept:
        b.output("intercept", theta[d], to=to)
    return BuiltProgram.of(b.build(), "logistic_regression", rows=dict(rows), spec=spec)


def reference_logistic_regression(
    x: np.ndarray, y: np.ndarray, spec: LogisticRegressionSpec
) -> dict[str, Any]:
    """The same mini-batch gradient descent in float64."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    d = spec.features
    lr = spec.learning_rate
    w, c = np.zeros(d), 0.0
    for _ in range(spec.epochs):
        for lo, hi in batches(len(x), spec.batch_size):
            xb, yb = x[lo:hi], y[lo:hi]
            err = 1.0 / (1.0 + np.exp(-(xb @ w + c))) - yb
            w = w * (1.0 - lr * spec.l2) - lr * (xb.T @ err) / (hi - lo)
            if spec.fit_intercept:
                c = c - lr * err.sum() / (hi - lo)
    out: dict[str, Any] = {"coef": w}
    if spec.fit_intercept:
        out["intercept"] = c
    return out


def cost_logistic_regression(
    rows: Mapping[str, int],
    spec: LogisticRegressionSpec,
    parties: Sequence[str] | None = None,
    suite: str | None = None,
    to: str | Sequence[str] | None = None,
) -> dict[str, Any]:
    """Declared rounds and bytes per party of :func:`build_logistic_regression`."""
    return program_cost(build_logistic_regression(rows, spec, parties, to).program, suite)
