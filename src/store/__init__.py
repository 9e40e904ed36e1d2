"""The parts behind ``chat_store.ChatStore``, one concern each; ``chat_store`` has the overview.

``model`` (values and constants), ``shared`` (what every part uses: KV, clock, indexes, cursors),
``create``, ``messages`` (get, patch, delete), ``plans`` (delete and erase plans), ``listing``
(list, count, reindex) and ``erase``.
"""
