"""The lecture's models, each usable from Python and from a ``dlia`` subcommand."""
