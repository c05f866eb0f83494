"""`python -m relaygate` is the `relaygate` command."""

import sys

from relaygate.cli import main

sys.exit(main())
