"""The one exception the CLI turns into a single line on stderr."""


class CliError(Exception):
    """A failure the user can act on: printed as ``kubesvc: <message>``, exit 1."""
