"""Entry point: ``python -m conformance compat|loop-under-test [options]``."""

import sys

from conformance.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
