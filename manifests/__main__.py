"""`python -m manifests ...`: the inspection CLI."""

from manifests.cli import main

raise SystemExit(main())
