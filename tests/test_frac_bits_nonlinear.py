"""The precision trade-off is one parameter: nonlinear operations stay right at other frac_bits."""

from __future__ import annotations

import numpy as np
import pytest

import smc


@pytest.mark.parametrize("frac_bits", [12, 20, 24])
def test_functions_track_frac_bits(frac_bits: int) -> None:
    ulp = 2.0**-frac_bits
    x = np.array([0.01, 0.5, 2.0, 37.0, 900.0])
    y = np.array([-5.0, -0.3, 0.0, 1.25, 7.0])
    xe = np.rint(x / ulp) * ulp  # what the parties actually hold
    ye = np.rint(y / ulp) * ulp
    p = smc.ProgramBuilder(["a", "b", "c"], frac_bits=frac_bits)
    a = p.input("a", "x", shape=x.shape)
    b = p.input("b", "y", shape=y.shape)
    secure = {
        "rec": a.reciprocal(),
        "sqrt": a.sqrt(),
        "rsqrt": a.rsqrt(),
        "log": a.log(),
        "exp": b.exp(),
        "sig": (b * 2).sigmoid(),
        "lt": a < 2.0,
    }
    for name, value in secure.items():
        p.output(name, value, to="a")
    got = smc.simulate(p.build(), {"a": {"x": x}, "b": {"y": y}})["a"]
    ref = {
        "rec": 1 / xe,
        "sqrt": np.sqrt(xe),
        "rsqrt": 1 / np.sqrt(xe),
        "log": np.log(xe),
        "exp": np.exp(ye),
        "sig": 1 / (1 + np.exp(-2 * ye)),
        "lt": xe < 2,
    }
    for name in secure:
        err = np.abs(got[name] - ref[name]) / np.maximum(1.0, np.abs(ref[name]))
        # a few dozen ulps cover the constants' rounding and the Newton/polynomial residue
        assert np.max(err) <= 64 * ulp + 1e-6, (name, frac_bits, np.max(err))
