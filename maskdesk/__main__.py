from maskdesk.app import main

raise SystemExit(main())
