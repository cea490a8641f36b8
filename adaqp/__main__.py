"""``python -m adaqp`` is the same as the ``adaqp`` command."""

from adaqp.cli.main import main

raise SystemExit(main())
