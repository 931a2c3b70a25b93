"""``python -m zincassay`` = the ``zincassay`` command."""

import sys

from zincassay.cli import main

sys.exit(main())
