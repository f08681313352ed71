"""Instance migration: moving running cases from one version of their definition to another.

Owns the alignment of two versions (SpiffWorkflow's `SpecDiff`, with explicit element mappings laid over
it), the verdict on each case (migratable, or why not), the move of a workflow instance in memory
(SpiffWorkflow's `migrate_workflow`, with the states, data and timer due times it would lose put back),
and the `migrated` / `migration_reverted` commands with their `case_migrations` rows.

`align` and `verdicts` are pure; `moves` moves a workflow in memory; `commands` commits a move (or a
revert) through the case service's pipeline and is what the audit replay re-runs; `service` holds the plan /
run / revert entry points over the database. May import cases (its command pipeline), definitions,
execution, store, errors and clock; audit imports `commands` (docs/migration.md).
"""
