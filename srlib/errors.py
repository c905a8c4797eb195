"""The one exception type srlib raises for bad input (the command line prints it in one line and
exits with status 2). Appendix: the API (book/api.md)."""


class SRError(Exception):
    """A user-facing error: bad file, bad argument, missing data set.

    Its message names the file or argument at fault; the CLI prints it on one line and
    exits with status 2.
    """
