"""``python -m broker.demo``: rewrite config/demo.yaml from the members' plan."""

from broker.demo.members import main

raise SystemExit(main())
