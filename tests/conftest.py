"""Test-session settings shared by unit and integration tests."""

from __future__ import annotations

import sys

# `wrangler dev` watches src/ and hot-reloads the Worker when a file appears there, answering
# in-flight requests with 503. Importing a src module for the first time mid-session would write
# src/__pycache__/*.pyc and trigger exactly that, so this session writes no bytecode at all.
sys.dont_write_bytecode = True
