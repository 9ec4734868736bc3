"""The ``dlia`` command line: one module per subcommand."""
