from openshelf.cli import main

raise SystemExit(main())
