"""pytest collection of this package's doctests: the BasicSR plug-in is imported only where BasicSR is installed.

``tests/test_basicsr_plugin.py`` decides whether a missing BasicSR skips (locally) or fails (``CI=true``).
"""

from __future__ import annotations

import importlib.util

collect_ignore = [] if importlib.util.find_spec("basicsr") else ["basicsr.py"]
