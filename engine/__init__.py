"""GridFlow's engine: definitions, cases, deadlines, the registry, delivery, the audit trail and storage.

Depends on `rules` (pure domain rules), never on `api`. One package per capability; inside `engine` they
import only downwards, checked by the import contracts in pyproject.toml:

    service, worker          compose everything (the only modules that import every package)
    audit                    verify, checkpoints, replay, as-of, dossier         -> cases, deadlines, execution, store
    cases                    commands, acting for a principal, queries, history -> access, deadlines, definitions,
                                                                                   delivery, execution, store
    delivery | registry      outbox and webhooks | registry and matter lists     -> deadlines | store
    deadlines | access | definitions                                             -> execution, store
    execution | store        the safe evaluator, functions, SpiffWorkflow | tables, sessions, migrations
    errors, clock            shared by all
"""
