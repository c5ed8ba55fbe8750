"""``python -m cds_service serve`` = ``cds-service serve``."""

import sys

from .cli import main

sys.exit(main())
