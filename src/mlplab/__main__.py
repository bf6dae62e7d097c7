from mlplab.cli import main

raise SystemExit(main())
