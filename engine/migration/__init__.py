"""Instance migration: moving running cases from one version of their definition to another.

Owns the alignment of two versions (SpiffWorkflow's `SpecDiff`, with explicit element mappings laid over
it), the verdict on each case (migratable, or why not), the move of a workflow instance in memory
(SpiffWorkflow's `migrate_workflow`, with the states, data and timer due times it would lose put back),
and the `migrated` / `migration_reverted` commands with their `case_migrations` rows.

`align` and `verdicts` are pure; `moves` is the command step shared by the service and the audit replay;
`service` holds the plan / run / revert entry points. Imports cases (its command pipeline), definitions,
deadlines, execution and store; the audit replay imports `moves` to re-run a recorded migration.
"""
