"""`python -m dispatchyard.cli`."""

import sys

from dispatchyard.cli import main

sys.exit(main())
