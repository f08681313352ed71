"""`python -m api.cli` runs `gridflow`."""
from api.cli import main

raise SystemExit(main())
