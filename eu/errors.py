"""User-facing errors: the CLI prints their message and exits non-zero without a traceback."""


class EUError(Exception):
    """Bad input or configuration that the user must fix; the message says what and how."""
