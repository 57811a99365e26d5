"""Test-wide settings."""

from __future__ import annotations

import os

from hypothesis import settings

# CI runs the property tests with a fixed seed, so a green run stays green on the same code;
# developers' runs stay random and keep finding new cases (failures are saved in .hypothesis/).
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
