from components.validation.cli import main

raise SystemExit(main())
