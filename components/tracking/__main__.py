from components.tracking.cli import main

raise SystemExit(main())
