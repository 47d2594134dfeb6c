"""``python -m kubesvc``: the same as the ``kubesvc`` command."""

import sys

from kubesvc.cli.main import main

sys.exit(main())
