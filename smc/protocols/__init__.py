"""Protocol suites (hazmat). Each suite turns IR operations into local share arithmetic and
communication rounds expressed as :class:`~smc.protocols.base.Exchange` steps."""
