"""Why an operation, or one request of it, is left to the executor."""


class Unsupported(Exception):
    """Planning met something the compiler cannot express: the operation runs on the executor.

    The message says what, for the development header and the debug log.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Fallback(Exception):
    """This request needs an answer the compiled statement does not give (an error, most
    often): the executor answers it, with today's data and errors."""

    def __init__(self, reason: str = "this request's values are the executor's to report") -> None:
        super().__init__(reason)
        self.reason = reason
