"""The hub: registry of party daemons, task intake and routing, task store, relay.

The hub is not trusted with data: it routes signed manifests, public programs, public key
announcements, end-to-end encrypted relay chunks and results encrypted to the client. It imports
no numpy and no share arithmetic (checked by an import contract and tests/test_hub_imports.py).
Run it with ``smc hub serve --config hub.toml``; see docs/deployment.md.
"""
