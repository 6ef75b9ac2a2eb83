"""Repository-wide pytest setup: the BasicSR plug-in's doctests are collected only where BasicSR is installed.

``--doctest-modules`` imports every module of ``gvcore``, and ``gvcore.integrations.basicsr`` needs BasicSR;
``tests/test_basicsr_plugin.py`` decides whether a missing BasicSR skips (locally) or fails (``CI=true``).
This file is not part of the package (it sits outside ``gvcore``), so the wheel does not ship it.
"""

from __future__ import annotations

import importlib.util

collect_ignore = [] if importlib.util.find_spec("basicsr") else ["gvcore/integrations/basicsr.py"]
