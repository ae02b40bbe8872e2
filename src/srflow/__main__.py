from srflow.cli.main import main

raise SystemExit(main())
