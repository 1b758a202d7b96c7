"""``python -m loralens`` is the ``loralens`` command."""

import sys

from loralens.cli import main

sys.exit(main())
