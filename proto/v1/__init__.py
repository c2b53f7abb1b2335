"""Generated protobuf/gRPC modules for ``smc.v1`` (do not edit; see ``smc.proto.generate``)."""
