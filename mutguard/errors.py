"""Errors a user sees: each message names the cluster, file or field that is wrong."""


class InputError(ValueError):
    """Input that cannot be parsed: a malformed document, an unknown shape, a bad argument."""
