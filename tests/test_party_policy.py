"""A party's configuration, datasets and policy: what it accepts and what it refuses, and why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from smc.hub.manifest import Binding, Manifest, ManifestError
from smc.party import circuits, config, datasets, policy

import smc
from smc.api import build_budget

PARTIES = ("alice", "bob", "carol")
HEAD = '[party]\nname = "a"\nhubs = ["h:1"]\ncert="c"\nkey="k"\nca="ca"\n'


def _manifest(program: smc.Program, **kw: Any) -> Manifest:
    base: dict[str, Any] = dict(
        task_id="a" * 32,
        client="analyst",
        program_sha256=program.hash,
        parties=program.parties,
        suite="rss3",
        created_ms=1,
        deadline_ms=2,
        result_key="",
    )
    base.update(kw)
    return Manifest(**base)


def _party_config(tmp_path: Path, extra_policy: str = "") -> config.PartyConfig:
    (tmp_path / "visits.csv").write_text("age,count\n30,1\n40,2\n50,3\n")
    np.save(tmp_path / "grid.npy", np.arange(6, dtype=np.float64).reshape(2, 3))
    (tmp_path / "party.toml").write_text(f"""
[party]
name = "alice"
cert = "alice.crt"
key = "alice.key"
ca = "ca.crt"
hubs = ["127.0.0.1:7443"]

[datasets.visits]
path = "visits.csv"
columns = {{ age = "fixed", count = "int" }}
rows = 3

[datasets.visits.policy]
recipients = ["alice", "analyst"]
min_parties = 2
{extra_policy}

[datasets.grid]
path = "grid.npy"
shape = [2, 3]

[datasets.grid.policy]
any_program = true
recipients = ["alice"]
""")
    return config.load(tmp_path / "party.toml")


def test_config_parses_and_resolves_paths(tmp_path: Path) -> None:
    cfg = _party_config(tmp_path)
    assert cfg.name == "alice" and cfg.hubs == ("127.0.0.1:7443",)
    assert cfg.datasets["visits"].path == tmp_path / "visits.csv"
    assert cfg.datasets["visits"].policy.min_parties == 2
    assert cfg.datasets["grid"].format == "npy"
    assert cfg.link_idle_s == 300.0  # the default
    assert cfg.relay_channel == "sealed"  # the default: sealed records after the mTLS handshake


@pytest.mark.parametrize(
    "bad, message",
    [
        (
            '[party]\nname = "a"\nhubs = ["h:1"]\ncert="c"\nkey="k"\nca="ca"\ntypo = 1\n',
            "unknown keys",
        ),
        (
            HEAD + '[datasets.d]\npath = "d.csv"\n',
            "needs its schema",
        ),
        (
            HEAD + '[datasets.d]\npath = "d.csv"\n'
            'columns = { x = "fixed" }\n[datasets.d.policy]\nprograms = ["nothex"]\n',
            "not a lowercase",
        ),
        ('[party]\nname = "a"\nhubs = []\ncert="c"\nkey="k"\nca="ca"\n', "host:port"),
        (HEAD.replace("[party]\n", "[party]\nlink_idle_s = 0\n"), "link_idle_s must be positive"),
        (HEAD.replace("[party]\n", "[party]\nlink_idle_s = nan\n"), "link_idle_s must be positive"),
        (HEAD.replace("[party]\n", '[party]\nlink_idle_s = "5m"\n'), "link_idle_s"),
        (
            HEAD.replace("[party]\n", '[party]\nrelay_channel = "plain"\n'),
            "relay_channel must be one of tls, sealed, got 'plain'",
        ),
    ],
)
def test_config_refuses_mistakes(tmp_path: Path, bad: str, message: str) -> None:
    (tmp_path / "p.toml").write_text(bad)
    with pytest.raises(config.ConfigFileError, match=message):
        config.load(tmp_path / "p.toml")


def _program(
    to: str = "alice",
    column: str = "visits.age",
    shape: tuple[int, ...] = (3,),
    dtype: str = "fixed",
) -> smc.Program:
    p = smc.ProgramBuilder(PARTIES)
    a = p.input("alice", column, shape=shape, dtype=dtype)
    b = p.input("bob", "x", shape=shape, dtype=dtype)
    p.output("sum", (a + b).sum(), to=to)
    return p.build()


def test_binding_by_name_and_explicit(tmp_path: Path) -> None:
    cfg = _party_config(tmp_path)
    node = _program().inputs_of("alice")[0]
    bound = datasets.bind(node, None, cfg.datasets)
    assert bound.binding == Binding("visits", ("age",))
    np.testing.assert_array_equal(bound.value, [30, 40, 50])
    node = _program(column="counts", dtype="int").inputs_of("alice")[0]
    bound = datasets.bind(node, Binding("visits", ("count",)), cfg.datasets)
    np.testing.assert_array_equal(bound.value, [1, 2, 3])
    both = _program(column="visits", shape=(3, 2)).inputs_of("alice")[0]
    assert datasets.bind(both, None, cfg.datasets).value.shape == (3, 2)
    grid = _program(column="grid", shape=(2, 3)).inputs_of("alice")[0]
    assert datasets.bind(grid, None, cfg.datasets).value.shape == (2, 3)


@pytest.mark.parametrize(
    "kw, binding, message",
    [
        ({"column": "payroll"}, None, "unknown dataset 'payroll'; this party offers"),
        ({"column": "visits.weight"}, None, "has no columns \\['weight'\\]"),
        ({"shape": (4,)}, None, "declares shape \\(4,\\), dataset 'visits' gives \\(3,\\)"),
        ({"column": "n", "dtype": "int"}, Binding("visits", ("age",)), "read as int"),
        ({"column": "grid", "shape": (6,)}, None, "declares shape \\(6,\\)"),
    ],
)
def test_binding_refusals(
    tmp_path: Path, kw: dict[str, Any], binding: Binding | None, message: str
) -> None:
    cfg = _party_config(tmp_path)
    node = _program(**kw).inputs_of("alice")[0]
    with pytest.raises(datasets.DatasetError, match=message):
        datasets.bind(node, binding, cfg.datasets)


def test_csv_content_is_checked(tmp_path: Path) -> None:
    cfg = _party_config(tmp_path)
    (tmp_path / "visits.csv").write_text("age,count\n30,1\n40,2.5\n50,3\n")
    node = _program(column="c", dtype="int").inputs_of("alice")[0]
    with pytest.raises(datasets.DatasetError, match="not an integer"):
        datasets.bind(node, Binding("visits", ("count",)), cfg.datasets)
    (tmp_path / "visits.csv").write_text("age,count\n30,1\nnan,2\n50,3\n")
    with pytest.raises(datasets.DatasetError, match="non-finite"):
        datasets.bind(_program().inputs_of("alice")[0], None, cfg.datasets)
    (tmp_path / "visits.csv").write_text("age,count\n30,1\n")
    with pytest.raises(datasets.DatasetError, match="declares 3 rows"):
        datasets.bind(_program().inputs_of("alice")[0], None, cfg.datasets)


def test_policy_allows_listed_programs_only(tmp_path: Path) -> None:
    program = _program()
    cfg = _party_config(tmp_path, f'programs = ["{program.hash}"]')
    policy.check(program, _manifest(program), [cfg.datasets["visits"]], None)
    other = _program(to="bob")
    cfg2 = _party_config(tmp_path)
    with pytest.raises(policy.PolicyError, match="dataset 'visits' is not allowed in program"):
        policy.check(program, _manifest(program), [cfg2.datasets["visits"]], None)
    cfg3 = _party_config(tmp_path, f'programs = ["{other.hash}"]')
    with pytest.raises(policy.PolicyError, match="may not be revealed to \\['bob'\\]"):
        policy.check(other, _manifest(other), [cfg3.datasets["visits"]], None)


def test_policy_recipients_include_the_forwarding_client(tmp_path: Path) -> None:
    program = _program()
    cfg = _party_config(tmp_path, f'programs = ["{program.hash}"]')
    visits = cfg.datasets["visits"]
    policy.check(program, _manifest(program, result_key="b" * 64), [visits], None)
    with pytest.raises(policy.PolicyError, match="\\['eve'\\]"):
        policy.check(program, _manifest(program, client="eve", result_key="b" * 64), [visits], None)


def test_policy_minimum_contributors(tmp_path: Path) -> None:
    p = smc.ProgramBuilder(PARTIES)
    p.output("m", p.input("alice", "visits.age", shape=(3,)).mean(), to="alice")
    solo = p.build()
    cfg = _party_config(tmp_path, f'programs = ["{solo.hash}"]')
    with pytest.raises(
        policy.PolicyError, match=r"at least 2 contributing parties, program .* has 1"
    ):
        policy.check(solo, _manifest(solo), [cfg.datasets["visits"]], None)


def test_policy_by_circuit_name(tmp_path: Path) -> None:
    from smc.party.demo import build_program

    program = build_program(3)
    assert circuits.verify("hospital_stats", {"rows": 3}, program) == "hospital_stats"
    with pytest.raises(circuits.CircuitError, match="is not circuit"):
        circuits.verify("hospital_stats", {"rows": 4}, program)
    with pytest.raises(circuits.CircuitError, match="unknown circuit"):
        circuits.verify("no_such_circuit", {}, program)
    with pytest.raises(circuits.CircuitError, match="not a circuit name"):
        circuits.verify("os.system", {}, program)


def test_a_circuit_claim_cannot_make_the_party_build_more_than_the_program() -> None:
    """The rebuild stops as soon as it passes the received program's node count (or its
    constant elements): a claim's parameters cannot make a party build an arbitrarily large
    program. A matching claim still verifies under the same budget."""
    from smc.party.demo import build_program

    tiny = smc.ProgramBuilder(["alice", "bob", "carol"])
    tiny.output("s", tiny.input("alice", "x", shape=(3,)).sum(), to="alice")
    with pytest.raises(circuits.CircuitError, match="node budget"):
        circuits.verify("hospital_stats", {"rows": 3}, tiny.build())
    with (
        build_budget(nodes=100, const_elements=2),
        pytest.raises(smc.ProgramError, match="constant elements"),
    ):
        smc.ProgramBuilder(["alice"]).const(np.ones(10**7))  # refused before encoding
    program = build_program(3)
    assert circuits.verify("hospital_stats", {"rows": 3}, program) == "hospital_stats"


def test_client_allow_list() -> None:
    policy.check_client("analyst", {"*"})
    policy.check_client("analyst", {"analyst"})
    with pytest.raises(policy.PolicyError, match="client 'eve' may not submit"):
        policy.check_client("eve", {"analyst"})


def test_manifest_is_canonical_and_validated() -> None:
    program = _program()
    man = _manifest(program, bindings={"alice": {"visits.age": Binding("visits", ("age",))}})
    assert Manifest.from_bytes(man.to_bytes()) == man
    with pytest.raises(ManifestError, match="not canonical"):
        Manifest.from_bytes(man.to_bytes().replace(b'"v":1', b'"v": 1'))
    with pytest.raises(ManifestError, match="exactly 3 parties"):
        _manifest(program, parties=("alice", "bob"))
    with pytest.raises(ManifestError, match="needs at least 2 parties and a dealer"):
        _manifest(program, suite="additive")
    with pytest.raises(ManifestError, match="deadline"):
        _manifest(program, deadline_ms=0)
    with pytest.raises(ManifestError, match="not a party"):
        _manifest(program, bindings={"mallory": {}})


def test_contribution_shares_are_uniform_halves_that_add_up() -> None:
    from smc.party import contrib

    values = np.array([1.5, -2.25, 3.0e6])
    shares = contrib.split(values, "fixed", 16, PARTIES)
    for hi, lo in shares.values():
        contrib.check_share("w", hi, lo, (3,))
    ring = contrib.join([shares[p] for p in PARTIES])
    np.testing.assert_array_equal(ring.view(np.int64), np.rint(values * 2**16).astype(np.int64))
    assert len({shares[p][0].tobytes() for p in PARTIES}) == 3
    with pytest.raises(contrib.ContributionError, match="shape"):
        contrib.check_share("w", shares["alice"][0], shares["alice"][1], (4,))
    with pytest.raises(contrib.ContributionError, match="32-bit"):
        contrib.check_share("w", shares["alice"][0] + (1 << 40), shares["alice"][1], (3,))


def test_manifest_contributions_are_validated() -> None:
    from smc.hub.manifest import Contribution

    program = _program()
    man = _manifest(
        program, contributions={"dora": {"w": Contribution("wages", ("wage",), "fixed")}}
    )
    assert man.members == (*PARTIES, "dora") and man.contributed() == {
        "w_hi": "dora",
        "w_lo": "dora",
    }
    assert Manifest.from_bytes(man.to_bytes()) == man
    with pytest.raises(ManifestError, match="not also a computing party"):
        _manifest(program, contributions={"alice": {"w": Contribution("wages")}})
    with pytest.raises(ManifestError, match="dtype must be fixed or int"):
        _manifest(program, contributions={"dora": {"w": Contribution("wages", (), "float")}})
    with pytest.raises(ManifestError, match="invalid or repeated"):
        _manifest(
            program,
            contributions={"dora": {"w": Contribution("a")}, "ed": {"w": Contribution("b")}},
        )
