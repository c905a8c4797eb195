"""`python -m srlib`: the command line of :mod:`srlib.cli`."""

import sys

from .cli import main

sys.exit(main())
