"""``python -m picsearch.cli``: the ``picsearch`` command."""

import sys

from . import main

sys.exit(main())
