"""Statistics (条例 §15 数据分析): the figures a county is evaluated on, computed so they cannot be gamed.

Owns the statistics facts (`stat_facts`, written by every command through the projection in `facts`),
the written definition of every figure (`figures`), periods in Beijing time (`periods`) and the queries
that compute figures per region, unit, worker, category or process version, with a drill-down filter for
each number (`service`). Imports `cases` (the case search it narrows), `access` (scopes), `store` and
`deadlines`-level rules; nothing below imports it: `Engine` hooks the projection into the command path.
"""
