"""The party side of a deployment: the daemon beside the data, and the analyst's client.

``smc party serve --config party.toml`` runs :class:`smc.party.daemon.PartyDaemon`;
:class:`Client` submits programs through a hub. See docs/deployment.md.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Client", "DeployResult", "HubRequestError", "Task", "TaskFailed"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from smc.party import client

        return getattr(client, name)
    raise AttributeError(f"module 'smc.party' has no attribute {name!r}")
