"""Errors a user sees: each message names the cluster, file or field that is wrong."""


class InputError(ValueError):
    """Input that cannot be parsed: a malformed document, an unknown shape, a bad argument."""


class ConfigurationError(InputError):
    """A setting is unusable: a sink's options, a variable of a deployed function; the message
    names the sink and field, or the variable."""


class StoreError(RuntimeError):
    """The state store could not be read or written; the message names the store."""


class MissingDependency(InputError):
    """An optional dependency is not installed; the message names the extra to install."""
