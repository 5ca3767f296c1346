"""Hypothesis profiles: no deadlines (CPU timings vary); CI replays a fixed set of examples."""

import os

from hypothesis import settings

settings.register_profile("default", deadline=None, print_blob=True)
settings.register_profile("ci", deadline=None, print_blob=True, derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# Scripts run by tests in subprocesses (torchrun), not test modules.
collect_ignore = ["scripts"]
