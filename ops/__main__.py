"""`python -m ops`: the operator CLI."""

import sys

from ops.cli import main

if __name__ == "__main__":
    sys.exit(main())
