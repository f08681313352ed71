"""Who may do what: the `Principal` and the scope rules as SQL filters (`scopes`), API keys for the
platform (`api_keys`), the log of unmasked personal-data reads (`access_log`), `Idempotency-Key` records
(`idempotency`), accounts of people who sign in to the console, with their sign-in log (`accounts`). May import `store`.
"""
