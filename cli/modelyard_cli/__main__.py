"""``python -m modelyard_cli`` runs the ``modelyard`` CLI."""

import sys

from modelyard_cli.main import main

sys.exit(main())
