from inference.icd.training.build import main

raise SystemExit(main())
