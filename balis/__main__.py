"""``python -m balis``: the balis command without the console script."""

import sys

from balis.cli import main

sys.exit(main())
