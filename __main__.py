"""`python -m baseshift`: the same command line as the `baseshift` script."""
from baseshift.core.app.cli import main

raise SystemExit(main())
