"""``python -m broker.cli``: the balis command without the console script."""

import sys

from broker.cli import main

sys.exit(main())
