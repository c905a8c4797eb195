"""The one exception type srlib raises for bad input."""


class SRError(Exception):
    """A user-facing error: bad file, bad argument, missing data set.

    Its message names the file or argument at fault; the CLI prints it on one line and
    exits with status 2.
    """
