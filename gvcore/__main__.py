"""``python -m gvcore ...``: the same command line as the ``gvcore`` console script."""

from __future__ import annotations

from gvcore.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
