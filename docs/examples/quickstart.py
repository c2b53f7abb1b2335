"""Quick start: three companies learn pay statistics without showing each other their payrolls.

Run: ``python docs/examples/quickstart.py``. This is the script shown in README.md.
"""

import numpy as np

import smc

# 1. Trace the computation. Nothing is computed here: each operation adds a node to a program.
p = smc.ProgramBuilder(["alice", "bob", "carol"])
a = p.input("alice", "salaries", shape=(4,))  # secret, owned by alice
b = p.input("bob", "salaries", shape=(4,))  # secret, owned by bob
both = smc.concatenate([a, b])
p.output("mean", both.mean(), to="carol")  # revealed to carol only
p.output("raised_total", (both * 1.03).sum(), to=["alice", "bob"])  # to alice and bob
p.output("top_up", a * b - 1000)  # to every party
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

# Check against plaintext numpy. Fixed point has 16 fractional bits: a product is exact to one
# ulp (2^-16); the public constant 1.03 is itself rounded to 16 bits (relative error < 2^-17).
both_plain = np.concatenate([alice, bob])
assert set(result["carol"]) == {"mean", "top_up"}
assert set(result["alice"]) == set(result["bob"]) == {"raised_total", "top_up"}
np.testing.assert_allclose(result["carol"]["mean"], both_plain.mean(), rtol=1e-5)
np.testing.assert_allclose(result["alice"]["raised_total"], (both_plain * 1.03).sum(), rtol=1e-5)
np.testing.assert_allclose(result["bob"]["top_up"], alice * bob - 1000, rtol=0, atol=2.0**-16)
print("all results match their plaintext references")
