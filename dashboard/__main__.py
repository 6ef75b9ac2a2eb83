"""``python path/to/dashboard/__main__.py [streamlit options]`` (or ``python -m dashboard`` from the repository root):
serve the dashboard on 127.0.0.1 from any working directory.

Streamlit reads ``.streamlit/config.toml`` from the working directory only; this launcher passes the settings
that matter for safety on the command line instead (loopback only, no usage statistics, headless).
"""

from __future__ import annotations

import sys
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"
SAFE_FLAGS = (
    "--server.address=127.0.0.1",
    "--browser.serverAddress=127.0.0.1",
    "--browser.gatherUsageStats=false",
    "--server.headless=true",
    "--client.toolbarMode=viewer",
)


def main(argv: list[str] | None = None) -> int:
    """Run ``streamlit run dashboard/app.py`` with :data:`SAFE_FLAGS` (extra options are passed through)."""
    from streamlit.web import cli as streamlit_cli

    sys.argv = ["streamlit", "run", str(APP), *SAFE_FLAGS, *(argv if argv is not None else sys.argv[1:])]
    return int(streamlit_cli.main() or 0)


if __name__ == "__main__":
    raise SystemExit(main())
