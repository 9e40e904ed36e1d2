"""Shared test helpers: fakes of Workers KV, in-process and `wrangler dev` harnesses, a manual
clock. ``tests`` is on ``sys.path`` (pytest ``pythonpath``, mypy ``mypy_path``), so tests import
them as ``from support.memory_kv import MemoryKV``.
"""
