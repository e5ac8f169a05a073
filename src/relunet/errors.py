"""The one exception type for bad user input."""


class InputError(Exception):
    """Bad input from the user: a missing or unreadable file, a wrong shape, label or channel count.

    The message is one line that names the file and what to do; the CLI prints it and exits
    with code 2, without a traceback.
    """
