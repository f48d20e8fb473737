"""Errors meant for people: one clear line, no traceback. The CLI exits 2 on them; the app shows gr.Error."""


class CelebError(Exception):
    """A problem with the user's input or files, explained in one line."""


class InputError(CelebError):
    """Bad user input: a file, an array, a prompt or a value out of range. ``field``: the request field it is about
    (celeblook.pipeline.requests), so a front end can show the message beside that control."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class WeightsError(CelebError):
    """Weights missing, corrupt or of the wrong kind; the message says the command that fixes it."""
