"""Three clinics train a logistic regression on their pooled rows, a vendor scores a hospital's
rows with a private MLP, and sites average model updates.

Run: python docs/circuits/examples/ml_example.py
"""

from __future__ import annotations

import numpy as np
from smc.circuits import (
    FedAvgSpec,
    LinearRegressionSpec,
    LogisticRegressionSpec,
    build_federated_average,
    build_linear_regression,
    build_logistic_regression,
    build_mlp,
    mlp_inputs,
    mlp_spec,
    reference_federated_average,
    reference_linear_regression,
    reference_logistic_regression,
    reference_mlp,
    run_local,
)

rng = np.random.default_rng(0)
ROWS = {"clinic_a": 200, "clinic_b": 150, "clinic_c": 250}
n, d = sum(ROWS.values()), 4
x = rng.normal(0, 1, (n + 2000, d))
true = np.array([1.5, -2.0, 0.8, 0.4])
y = (rng.random(len(x)) < 1 / (1 + np.exp(-(x @ true - 0.5)))).astype(np.float64)
x_train, y_train, x_test, y_test = x[:n], y[:n], x[n:], y[n:]


def split(xs: np.ndarray, ys: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    out, start = {}, 0
    for p, r in ROWS.items():
        out[p] = {"X": xs[start : start + r], "y": ys[start : start + r]}
        start += r
    return out


# logistic regression: mini-batch gradient descent in fixed point, same algorithm in float64
spec = LogisticRegressionSpec(d, epochs=4, batch_size=100, learning_rate=0.5)
model = run_local(build_logistic_regression(ROWS, spec), split(x_train, y_train))
ref = reference_logistic_regression(x_train, y_train, spec)


def acc(coef: np.ndarray, c: float) -> float:
    return float(np.mean(((x_test @ coef + c) >= 0) == (y_test == 1)))


secure, plain = acc(model["coef"], float(model["intercept"])), acc(ref["coef"], ref["intercept"])
print(f"held-out accuracy: MPC-trained {secure:.3f}, float64 {plain:.3f}")
assert abs(secure - plain) <= 0.01

# linear regression by the normal equations, against numpy.linalg.lstsq
y_lin = x_train @ true + 0.3 + rng.normal(0, 0.2, n)
lin = LinearRegressionSpec(d)
fit = run_local(build_linear_regression(ROWS, lin), split(x_train, y_lin))
want = reference_linear_regression(x_train, y_lin, lin)
rel = np.max(np.abs(fit["coef"] - want["coef"]) / np.abs(want["coef"]))
print(f"linear regression: max relative coefficient error {rel:.1e}")
assert rel <= 1e-2

# a vendor's private MLP (a state dict: torch tensors work the same) scores a hospital's rows
state = {
    "0.weight": rng.normal(0, 0.5, (16, d)),
    "0.bias": np.zeros(16),
    "2.weight": rng.normal(0, 0.5, (3, 16)),
    "2.bias": np.zeros(3),
}
parties = ("vendor", "hospital", "aux")
mlp = build_mlp("vendor", "hospital", 20, mlp_spec(state, "class"), parties)
classes = run_local(mlp, {"vendor": mlp_inputs(state), "hospital": {"X": x_test[:20]}})
logits = reference_mlp(state, x_test[:20])["logits"]
top = np.sort(logits, axis=1)
clear = top[:, -1] - top[:, -2] > 1e-3
assert np.array_equal(classes["class"][clear], np.argmax(logits, axis=1)[clear])
print("MLP classes:", classes["class"])

# secure aggregation: the weighted average of three sites' updates, weights kept secret
sites = ["clinic_a", "clinic_b", "clinic_c"]
updates = {p: rng.normal(0, 0.05, 10) for p in sites}
fed = FedAvgSpec(10)
avg = run_local(
    build_federated_average(sites, fed),
    {p: {"update": updates[p], "weight": ROWS[p]} for p in sites},
)
ref_avg = reference_federated_average(updates, fed, ROWS)["average"]
assert np.max(np.abs(avg["average"] - ref_avg)) <= 1e-4
print("all models match their float64 references")
