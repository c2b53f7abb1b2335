"""Inference where one party owns the model and another owns the rows.

The model owner binds the weights, the data owner binds the feature rows; the recipient (by
default the data owner) learns the scores, labels, logits or classes, the model owner learns
nothing about the rows and the data owner nothing about the weights beyond what the outputs
imply.

* Scoring (:func:`build_scoring`): linear scores X w + c, or logistic probabilities
  sigmoid(X w + c), or labels: [X w + c >= threshold] (for the logistic link, probability >= 1/2
  is the same test with threshold 0, so no sigmoid is computed).
* MLP (:func:`build_mlp`): dense layers with ReLU between them, from numpy arrays or a PyTorch
  state dict (``name -> tensor``; anything with ``.numpy()`` or accepted by ``np.asarray``).
  Layer weights follow torch.nn.Linear: ``weight`` (out, in), ``bias`` (out,).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import smc
from smc.errors import ProgramError

from .base import BuiltProgram
from .cost import program_cost


@dataclass(frozen=True)
class ScoringSpec:
    """``link``: "linear" or "logistic"; ``output``: "score" or "label"."""

    features: int
    link: str = "logistic"
    output: str = "score"
    threshold: float = 0.0

    def __post_init__(self) -> None:
        if self.link not in ("linear", "logistic") or self.output not in ("score", "label"):
            raise ProgramError("link must be linear|logistic and output score|label")
        if self.features < 1:
            raise ProgramError("scoring needs at least one feature")


def build_scoring(
    model_owner: str,
    data_owner: str,
    rows: int,
    spec: ScoringSpec,
    parties: Sequence[str] | None = None,
    to: str | Sequence[str] | None = None,
    frac_bits: int = 16,
) -> BuiltProgram:
    """The model owner binds ``coef`` (features,) and ``intercept`` (); the data owner binds
    ``X`` (rows, features). Output ``scores`` (fixed) or ``labels`` (0/1), to ``to`` (default:
    the data owner)."""
    b = smc.ProgramBuilder(list(parties or (model_owner, data_owner)), frac_bits)
    w = b.input(model_owner, "coef", spec.features)
    c = b.input(model_owner, "intercept", ())
    x = b.input(data_owner, "X", (rows, spec.features))
    z = x @ w + c
    recipient = data_owner if to is None else to
    if spec.output == "label":
        threshold = 0.0 if spec.link == "logistic" else spec.threshold
        b.output("labels", z >= threshold, to=recipient)
    else:
        b.output("scores", z.sigmoid() if spec.link == "logistic" else z, to=recipient)
    return BuiltProgram.of(b.build(), "scoring", rows=rows, spec=spec)


def reference_scoring(coef: Any, intercept: float, x: Any, spec: ScoringSpec) -> dict[str, Any]:
    z = np.asarray(x, dtype=np.float64) @ np.asarray(coef, dtype=np.float64) + intercept
    if spec.output == "label":
        threshold = 0.0 if spec.link == "logistic" else spec.threshold
        return {"labels": (z >= threshold).astype(np.int64)}
    return {"scores": 1.0 / (1.0 + np.exp(-z)) if spec.link == "logistic" else z}


def cost_scoring(
    rows: int,
    spec: ScoringSpec,
    parties: Sequence[str] = ("model", "data", "helper"),
    suite: str | None = None,
    to: str | Sequence[str] | None = None,
) -> dict[str, Any]:
    """Declared cost of :func:`build_scoring` (model owner and data owner first in ``parties``)."""
    built = build_scoring(parties[0], parties[1], rows, spec, parties, to)
    return program_cost(built.program, suite)


# ------------------------------------------------------------------------------------- MLP


@dataclass(frozen=True)
class MLPSpec:
    """``sizes``: (inputs, hidden..., outputs); ``output``: "logits" or "class" (the argmax,
    first index on ties)."""

    sizes: tuple[int, ...]
    output: str = "logits"

    def __post_init__(self) -> None:
        if len(self.sizes) < 2 or min(self.sizes) < 1:
            raise ProgramError("an MLP needs at least an input and an output size")
        if self.output not in ("logits", "class"):
            raise ProgramError("output must be 'logits' or 'class'")


def as_array(value: Any) -> np.ndarray:
    """A numpy float64 copy of an array-like or a tensor (torch is never imported)."""
    if hasattr(value, "detach"):
        value = value.detach()
    if hasattr(value, "cpu"):
        value = value.cpu()
    if hasattr(value, "numpy"):
        value = value.numpy()
    return np.array(value, dtype=np.float64)


def mlp_layers(
    state: Mapping[str, Any] | Sequence[tuple[Any, Any]],
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(weight (out, in), bias (out,)) per layer, from a state dict (keys ``<layer>.weight`` and
    ``<layer>.bias`` in layer order, as ``torch.nn.Sequential(...).state_dict()`` gives) or from
    a sequence of (weight, bias) pairs. A missing bias is zero."""
    if not isinstance(state, Mapping):
        return [(as_array(w), as_array(bias)) for w, bias in state]
    groups: dict[str, dict[str, np.ndarray]] = {}
    for key, value in state.items():
        layer, _, kind = key.rpartition(".")
        if kind in ("weight", "bias"):
            groups.setdefault(layer, {})[kind] = as_array(value)
    layers = []
    for name, g in groups.items():
        if "weight" not in g or g["weight"].ndim != 2:
            raise ProgramError(f"layer {name!r} has no 2-D weight")
        bias = g.get("bias", np.zeros(g["weight"].shape[0]))
        layers.append((g["weight"], bias))
    if not layers:
        raise ProgramError("no '<layer>.weight' entries in the state dict")
    for (w0, _), (w1, _) in itertools.pairwise(layers):
        if w1.shape[1] != w0.shape[0]:
            raise ProgramError(f"layer shapes do not chain: {w0.shape} then {w1.shape}")
    return layers


def mlp_spec(state: Any, output: str = "logits") -> MLPSpec:
    layers = mlp_layers(state)
    return MLPSpec((layers[0][0].shape[1], *(w.shape[0] for w, _ in layers)), output)


def mlp_inputs(state: Any) -> dict[str, np.ndarray]:
    """The model owner's binding: ``W{i}`` and ``b{i}`` per layer."""
    out: dict[str, np.ndarray] = {}
    for i, (w, bias) in enumerate(mlp_layers(state)):
        out[f"W{i}"], out[f"b{i}"] = w, bias
    return out


def build_mlp(
    model_owner: str,
    data_owner: str,
    rows: int,
    spec: MLPSpec,
    parties: Sequence[str] | None = None,
    to: str | Sequence[str] | None = None,
    frac_bits: int = 16,
) -> BuiltProgram:
    """The model owner binds ``W{i}`` (out, in) and ``b{i}`` per layer (:func:`mlp_inputs`);
    the data owner binds ``X`` (rows, inputs). Output ``logits`` (rows, outputs) or ``class``
    (rows,), to ``to`` (default: the data owner)."""
    b = smc.ProgramBuilder(list(parties or (model_owner, data_owner)), frac_bits)
    h = b.input(data_owner, "X", (rows, spec.sizes[0]))
    count = len(spec.sizes) - 1
    for i in range(count):
        w = b.input(model_owner, f"W{i}", (spec.sizes[i + 1], spec.sizes[i]))
        bias = b.input(model_owner, f"b{i}", spec.sizes[i + 1])
        h = h @ w.T + bias
        if i < count - 1:
            h = h.relu()
    recipient = data_owner if to is None else to
    if spec.output == "class":
        b.output("class", h.argmax(axis=1), to=recipient)
    else:
        b.output("logits", h, to=recipient)
    return BuiltProgram.of(b.build(), "mlp", rows=rows, spec=spec)


def reference_mlp(state: Any, x: Any, output: str = "logits") -> dict[str, Any]:
    h = np.asarray(x, dtype=np.float64)
    layers = mlp_layers(state)
    for i, (w, bias) in enumerate(layers):
        h = h @ w.T + bias
        if i < len(layers) - 1:
            h = np.maximum(h, 0.0)
    return {"class": np.argmax(h, axis=1)} if output == "class" else {"logits": h}


def cost_mlp(
    rows: int,
    spec: MLPSpec,
    parties: Sequence[str] = ("model", "data", "helper"),
    suite: str | None = None,
    to: str | Sequence[str] | None = None,
) -> dict[str, Any]:
    """Declared cost of :func:`build_mlp` (model owner and data owner first in ``parties``)."""
    return program_cost(build_mlp(parties[0], parties[1], rows, spec, parties, to).program, suite)
