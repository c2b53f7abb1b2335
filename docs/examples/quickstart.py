"""Quick start: two companies learn pay statistics without showing each other their payrolls.

Run: ``python docs/examples/quickstart.py``. This is the script shown in README.md.
"""

import numpy as np

import smc

# 1. Trace the computation. Nothing is computed here: each operation adds a node to a program.
p = smc.ProgramBuilder(["alice", "bob", "carol"])
a = p.input("alice", "salaries", shape=(4,))  # secret, owned by alice
b = p.input("bob", "salaries", shape=(4,))  # secret, owned by bob
both = smc.concatenate([a, b])
mean = both.mean()
p.output("mean", mean, to="carol")  # revealed to carol only
p.output("variance", ((both - mean) * (both - mean)).mean(), to="carol")
p.output("raised_total", (both * 1.03).sum(), to=["alice", "bob"])
p.output("gap", a - b)  # to every party
program = p.build()
print(program.summary())

# 2. Run it: every party is a thread of this process, exchanging shares in memory.
alice = np.array([4200.0, 3900.5, 5100.0, 4700.25])
bob = np.array([3800.0, 4100.0, 4400.75, 5000.0])
result = smc.simulate(program, {"alice": {"salaries": alice}, "bob": {"salaries": bob}})

# 3. Each party sees only the outputs addressed to it.
print("carol:", result["carol"])
print("alice:", result["alice"])
print(f"{result.rounds} rounds, bytes sent per party: {result.bytes_per_party}")

# Check against plaintext numpy. Fixed point has 16 fractional bits: each product is exact to
# one ulp (2^-16), and the public constant 1.03 is rounded to 16 bits (relative error < 2^-17).
both_plain = np.concatenate([alice, bob])
assert set(result["carol"]) == {"mean", "variance", "gap"}
assert set(result["alice"]) == set(result["bob"]) == {"raised_total", "gap"}
np.testing.assert_allclose(result["carol"]["mean"], both_plain.mean(), rtol=1e-5)
np.testing.assert_allclose(result["carol"]["variance"], both_plain.var(), rtol=1e-4)
np.testing.assert_allclose(result["alice"]["raised_total"], (both_plain * 1.03).sum(), rtol=1e-5)
np.testing.assert_array_equal(result["bob"]["gap"], alice - bob)
print("all results match their plaintext references")
