"""``python -m zincassay`` = the ``zincassay`` command.

When the workflow has started a warm server (:mod:`zincassay.server`), a workflow step runs there and
this process only waits for it; otherwise (or if the server does not answer) it runs here.
"""

import sys

from zincassay.server import run_remote

if sys.argv[1:2] == ["run"] and sys.argv[2:3] != ["serve"]:
    code = run_remote(sys.argv[1:])
    if code is not None:
        sys.exit(code)

from zincassay.cli import main

sys.exit(main())
