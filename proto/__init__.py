"""Protobuf definitions of the deployment (package ``smc.v1``) and their generated Python code.

The ``.proto`` files live in ``v1/``; the generated ``*_pb2.py``/``*_pb2_grpc.py`` modules beside
them are committed, so installing smc needs no protobuf compiler. After editing a ``.proto`` file
run ``python -m smc.proto.generate`` (needs the ``dev`` extra's grpcio-tools); a test fails when the
committed code is stale.
"""
