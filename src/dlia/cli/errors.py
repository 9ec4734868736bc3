"""User errors: the CLI prints one line for them and exits with status 2."""


class UserError(Exception):
    """A problem with the user's input (bad argument, missing or unreadable file)."""
