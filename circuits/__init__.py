"""smc.circuits: ready computations, each a program builder, a plaintext reference and a
declared cost.

Every ``build_*`` returns a :class:`BuiltProgram` (a plain :class:`smc.Program` plus the inputs
each party binds and the recipients of each output); data is bound separately as
``party -> {input name: array}`` and run with :func:`run_local` in simulation (or shipped to party
daemons through a hub). Every ``reference_*`` computes the same result in plaintext numpy; every
``cost_*`` returns ``{"rounds", "bytes_per_party", "bytes_per_endpoint"}`` derived from the
engine's per-operation costs (:mod:`smc.circuits.cost`).

Families (docs/circuits/): statistics over horizontally partitioned rows (:mod:`.stats`), joins
over vertically partitioned data (:mod:`.join`), sealed-bid auctions (:mod:`.auction`), voting
(:mod:`.voting`), model training (:mod:`.ml`), inference (:mod:`.inference`) and federated
averaging (:mod:`.federated`). :mod:`.registry` names every circuit (``"stats"``,
``"auction.vickrey"``, ``"voting.plurality"``, ...) and builds it from JSON parameters, so that a
party daemon's policy can allow circuits by name.
"""

from . import registry
from .auction import AuctionSpec, build_auction, cost_auction, reference_auction
from .base import BuiltProgram, InputSpec, LocalResult, merge_data, run_local
from .blocks import client_shares
from .cost import Cost, estimate, program_cost
from .federated import (
    FedAvgSpec,
    build_federated_average,
    cost_federated_average,
    reference_federated_average,
)
from .inference import (
    MLPSpec,
    ScoringSpec,
    build_mlp,
    build_scoring,
    cost_mlp,
    cost_scoring,
    mlp_inputs,
    mlp_layers,
    mlp_spec,
    reference_mlp,
    reference_scoring,
)
from .join import JoinSpec, build_join, cost_join, reference_join
from .ml import (
    LinearRegressionSpec,
    LogisticRegressionSpec,
    build_linear_regression,
    build_logistic_regression,
    cost_linear_regression,
    cost_logistic_regression,
    reference_linear_regression,
    reference_logistic_regression,
)
from .registry import CIRCUITS
from .stats import Predicate, StatsSpec, build_stats, cost_stats, reference_stats
from .voting import ElectionSpec, build_election, cost_election, reference_election

__all__ = [
    "CIRCUITS",
    "AuctionSpec",
    "BuiltProgram",
    "Cost",
    "ElectionSpec",
    "FedAvgSpec",
    "InputSpec",
    "JoinSpec",
    "LinearRegressionSpec",
    "LocalResult",
    "LogisticRegressionSpec",
    "MLPSpec",
    "Predicate",
    "ScoringSpec",
    "StatsSpec",
    "build_auction",
    "build_election",
    "build_federated_average",
    "build_join",
    "build_linear_regression",
    "build_logistic_regression",
    "build_mlp",
    "build_scoring",
    "build_stats",
    "client_shares",
    "cost_auction",
    "cost_election",
    "cost_federated_average",
    "cost_join",
    "cost_linear_regression",
    "cost_logistic_regression",
    "cost_mlp",
    "cost_scoring",
    "cost_stats",
    "estimate",
    "merge_data",
    "mlp_inputs",
    "mlp_layers",
    "mlp_spec",
    "program_cost",
    "reference_auction",
    "reference_election",
    "reference_federated_average",
    "reference_join",
    "reference_linear_regression",
    "reference_logistic_regression",
    "reference_mlp",
    "reference_scoring",
    "reference_stats",
    "registry",
    "run_local",
]
