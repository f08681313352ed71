"""GridFlow's engine: definitions, cases, history and storage. Depends on `rules`, never on `api`."""
