"""Machine learning circuits reach the accuracy the issue asks for.

* linear regression coefficients within 1e-2 relative of numpy.linalg.lstsq on well-conditioned
  data (measured: about 1e-4);
* logistic regression trained in MPC reaches a held-out accuracy within 1 percentage point of
  the same mini-batch gradient descent in float64 (measured: identical);
* federated averaging, scoring and MLP inference agree with numpy within fixed-point error.
"""

from __future__ import annotations

import numpy as np
import pytest
from smc.circuits import (
    FedAvgSpec,
    LinearRegressionSpec,
    LogisticRegressionSpec,
    MLPSpec,
    ScoringSpec,
    build_federated_average,
    build_linear_regression,
    build_logistic_regression,
    build_mlp,
    build_scoring,
    mlp_inputs,
    mlp_spec,
    reference_federated_average,
    reference_linear_regression,
    reference_logistic_regression,
    reference_mlp,
    reference_scoring,
    run_local,
)
from smc.circuits.cost import measured_cost, program_cost

from smc.errors import ProgramError

ROWS = {"clinic_a": 180, "clinic_b": 150, "clinic_c": 170}


def split(x: np.ndarray, y: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    out, start = {}, 0
    for p, r in ROWS.items():
        out[p] = {"X": x[start : start + r], "y": y[start : start + r]}
        start += r
    return out


def regression_data(seed: int, d: int = 5) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
    rng = np.random.default_rng(seed)
    n = sum(ROWS.values())
    x = rng.normal(0, 1, (n, d))
    coef = rng.uniform(0.5, 3.0, d) * rng.choice([-1, 1], d)
    return x, coef, rng


@pytest.mark.parametrize(
    "spec",
    [
        LinearRegressionSpec(5),
        LinearRegressionSpec(5, fit_intercept=False),
        LinearRegressionSpec(5, ridge=0.05),
    ],
    ids=["intercept", "no intercept", "ridge"],
)
def test_linear_regression_matches_lstsq(spec: LinearRegressionSpec) -> None:
    x, coef, rng = regression_data(seed=11)
    y = x @ coef + 1.25 + rng.normal(0, 0.3, len(x))
    built = build_linear_regression(ROWS, spec)
    res = run_local(built, split(x, y))
    ref = reference_linear_regression(x, y, spec)
    rel = np.abs(res["coef"] - ref["coef"]) / np.abs(ref["coef"])
    assert rel.max() <= 1e-2
    assert rel.max() <= 2e-3  # what it actually achieves, with margin
    if spec.fit_intercept:
        assert abs(res["intercept"] - ref["intercept"]) <= 1e-2 * abs(ref["intercept"])
    assert program_cost(built.program) == measured_cost(res.result)


def accuracy(x: np.ndarray, y: np.ndarray, coef: np.ndarray, intercept: float) -> float:
    return float(np.mean(((x @ coef + intercept) >= 0) == (y == 1)))


def test_logistic_regression_accuracy_within_one_point_of_float64() -> None:
    x, coef, rng = regression_data(seed=5, d=4)
    n_test = 4000
    x_all = np.vstack([x, rng.normal(0, 1, (n_test, 4))])
    p = 1 / (1 + np.exp(-(x_all @ coef - 0.4)))
    y_all = (rng.random(len(x_all)) < p).astype(np.float64)
    x_train, y_train = x_all[: len(x)], y_all[: len(x)]
    x_test, y_test = x_all[len(x) :], y_all[len(x) :]
    spec = LogisticRegressionSpec(4, epochs=3, batch_size=100, learning_rate=0.5, l2=0.001)
    built = build_logistic_regression(ROWS, spec)
    res = run_local(built, split(x_train, y_train))
    ref = reference_logistic_regression(x_train, y_train, spec)
    np.testing.assert_allclose(res["coef"], ref["coef"], atol=2e-3)
    secure = accuracy(x_test, y_test, res["coef"], float(res["intercept"]))
    plain = accuracy(x_test, y_test, ref["coef"], ref["intercept"])
    assert abs(secure - plain) <= 0.01
    assert secure > 0.75
    assert program_cost(built.program) == measured_cost(res.result)
    # the trained model scores new rows held by another party
    score = ScoringSpec(4, link="logistic", output="label")
    scoring = build_scoring("clinic_a", "clinic_b", 50, score, parties=list(ROWS))
    model = {"coef": res["coef"], "intercept": res["intercept"]}
    labels = run_local(scoring, {"clinic_a": model, "clinic_b": {"X": x_test[:50]}})["labels"]
    want = reference_scoring(res["coef"], float(res["intercept"]), x_test[:50], score)["labels"]
    np.testing.assert_array_equal(labels, want)


@pytest.mark.parametrize("link", ["linear", "logistic"])
@pytest.mark.parametrize("output", ["score", "label"])
def test_scoring(link: str, output: str) -> None:
    rng = np.random.default_rng(2)
    spec = ScoringSpec(6, link=link, output=output, threshold=0.5)
    coef, x = rng.normal(0, 1, 6), np.round(rng.normal(0, 1, (20, 6)) * 256) / 256
    built = build_scoring("owner", "holder", 20, spec, parties=("owner", "holder", "aux"))
    assert built.outputs == {("scores" if output == "score" else "labels"): ("holder",)}
    res = run_local(built, {"owner": {"coef": coef, "intercept": -0.2}, "holder": {"X": x}})
    want = reference_scoring(coef, -0.2, x, spec)
    name = next(iter(want))
    np.testing.assert_allclose(res[name], want[name], atol=1e-4)


class FakeTensor:
    """Stands in for a torch tensor: .detach().cpu().numpy()."""

    def __init__(self, a: np.ndarray) -> None:
        self.a = a

    def detach(self) -> FakeTensor:
        return self

    def cpu(self) -> FakeTensor:
        return self

    def numpy(self) -> np.ndarray:
        return self.a


def mlp_state(rng: np.random.Generator) -> dict[str, FakeTensor]:
    return {
        "0.weight": FakeTensor(rng.normal(0, 0.5, (8, 5))),
        "0.bias": FakeTensor(rng.normal(0, 0.1, 8)),
        "2.weight": FakeTensor(rng.normal(0, 0.5, (3, 8))),
        "2.bias": FakeTensor(rng.normal(0, 0.1, 3)),
    }


@pytest.mark.parametrize("output", ["logits", "class"])
def test_mlp_from_a_state_dict(output: str) -> None:
    rng = np.random.default_rng(8)
    state = mlp_state(rng)
    x = rng.normal(0, 1, (12, 5))
    spec = mlp_spec(state, output)
    assert spec == MLPSpec((5, 8, 3), output)
    built = build_mlp("vendor", "hospital", 12, spec, parties=("vendor", "hospital", "aux"))
    res = run_local(built, {"vendor": mlp_inputs(state), "hospital": {"X": x}})
    want = reference_mlp(state, x, output)
    if output == "class":
        logits = reference_mlp(state, x)["logits"]
        top2 = np.sort(logits, axis=1)[:, -2:]
        clear = top2[:, 1] - top2[:, 0] > 1e-3  # argmax is exact up to fixed-point near-ties
        np.testing.assert_array_equal(res["class"][clear], want["class"][clear])
    else:
        np.testing.assert_allclose(res["logits"], want["logits"], atol=2e-4)
    assert program_cost(built.program) == measured_cost(res.result)
    tensors = list(state.values())
    layers = [(w.a, b.a) for w, b in zip(tensors[::2], tensors[1::2], strict=True)]
    assert mlp_spec(layers, output) == spec
    with pytest.raises(ProgramError, match="chain"):
        mlp_spec({"a.weight": np.ones((3, 2)), "b.weight": np.ones((2, 4))})


def test_mlp_from_a_real_torch_model() -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 2))
    x = np.random.default_rng(1).normal(0, 1, (5, 4))
    spec = mlp_spec(model.state_dict())
    built = build_mlp("vendor", "hospital", 5, spec, parties=("vendor", "hospital", "aux"))
    res = run_local(built, {"vendor": mlp_inputs(model.state_dict()), "hospital": {"X": x}})
    with torch.no_grad():
        want = model(torch.tensor(x, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(res["logits"], want, atol=1e-3)


def test_federated_average_public_secret_clipped_and_empty() -> None:
    rng = np.random.default_rng(4)
    names = ["site_a", "site_b", "site_c"]
    updates = {p: rng.normal(0, 1, 7) for p in names}
    weights = {"site_a": 120, "site_b": 0, "site_c": 45}
    for spec in (
        FedAvgSpec(7),
        FedAvgSpec(7, weights={"site_a": 1.0, "site_b": 3.0, "site_c": 0.5}),
        FedAvgSpec(7, clip=0.5),
    ):
        built = build_federated_average(names, spec)
        data = {
            p: {"update": updates[p], **({"weight": weights[p]} if spec.weights is None else {})}
            for p in names
        }
        res = run_local(built, data)
        want = reference_federated_average(updates, spec, weights)
        np.testing.assert_allclose(res["average"], want["average"], atol=1e-4)
        assert int(res["valid"]) == 1
        assert program_cost(built.program) == measured_cost(res.result)
    built = build_federated_average(names, FedAvgSpec(7))
    zero = {p: {"update": updates[p], "weight": 0} for p in names}
    res = run_local(built, zero)
    assert int(res["valid"]) == 0 and not np.any(res["average"])
