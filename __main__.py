"""`python -m baseshift`: the same command line as the `baseshift` script."""
from baseshift.core.cli import main

raise SystemExit(main())
