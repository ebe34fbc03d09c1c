# Shared pytest setup for the agent and e2e tiers: makes the husktest
# helper package importable.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
