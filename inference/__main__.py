from inference.cli.main import main

raise SystemExit(main())
