"""The exit codes every command keeps, and the error a command ends with."""

import click

OK = 0
# The server refused the act (403, 409), a verdict is NO-GO or a run failed, a change you waited
# for was overtaken, or a person answered "no" to a confirmation.
REFUSED = 1
# Usage, API (400, 401, 404, 422, 429, 5xx) or network error: nothing is known about the verdict.
ERROR = 2


class CliError(click.ClickException):
    """Ends the command with `Error: <message>` on stderr and the given exit code."""

    def __init__(self, message: str, *, exit_code: int = ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Refused(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=REFUSED)
