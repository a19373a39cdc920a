"""``python -m streams.cli``: the ``salespulse`` command."""

import sys

from streams.cli.main import main

sys.exit(main())
