"""User-facing errors.

Anything caused by bad input (a missing file, a wrong shape, an unknown spec key) raises
:class:`AdaqpInputError`. The CLI turns it into one line on stderr and exit code 2; library
callers can catch it like any ``ValueError``.
"""


class AdaqpInputError(ValueError):
    """Bad input from the user: printed as one line by the CLI, exit code 2."""


def require(condition: bool, message: str) -> None:
    """Raise :class:`AdaqpInputError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise AdaqpInputError(message)
