"""`python -m kdns` runs the command line."""

import sys

from kdns.cli import main

sys.exit(main())
