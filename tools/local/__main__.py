"""`python -m tools.local up|check|down`."""

import sys

from tools.local.launcher import main

sys.exit(main())
