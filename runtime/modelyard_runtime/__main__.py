"""``python -m modelyard_runtime`` is ``modelyard-runtime``."""

import sys

from modelyard_runtime.cli import main

sys.exit(main())
