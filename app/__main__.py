"""``python -m app``: start the desktop app (the same as ``rtdeblur app``)."""

import sys

from app.cli import main

sys.exit(main())
