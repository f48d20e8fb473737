"""Errors meant for people: one clear line, no traceback. The CLI exits 2 on them; the app shows gr.Error."""


class CelebError(Exception):
    """A problem with the user's input or files, explained in one line."""


class InputError(CelebError):
    """Bad user input: a file, an array, a prompt or a value out of range."""


class WeightsError(CelebError):
    """Weights missing, corrupt or of the wrong kind; the message says the command that fixes it."""
