"""``python -m signalfire``."""

from signalfire.cli.main import main

raise SystemExit(main())
