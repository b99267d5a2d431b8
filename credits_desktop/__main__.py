"""``python -m credits_desktop``: the same as the ``credits-desktop`` command."""

import sys

from credits_desktop.cli import main

sys.exit(main())
