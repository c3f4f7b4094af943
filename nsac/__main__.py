"""`python -m nsac` runs the same command line as the `nsac` console script."""

from nsac.cli import main

raise SystemExit(main())
