"""``python -m synthrelease.cli``: the same as the ``synthrelease`` command."""

import sys

from synthrelease.cli import main

sys.exit(main())
