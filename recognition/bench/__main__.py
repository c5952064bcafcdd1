"""python -m recognition.bench: see recognition/bench/__init__.py."""

from recognition.bench import main

raise SystemExit(main())
