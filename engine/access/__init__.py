"""Who may do what: the `Principal` and the scope rules as SQL filters (`scopes`), API keys for the
platform (`api_keys`), the log of unmasked personal-data reads (`access_log`), `Idempotency-Key` records
(`idempotency`). May import `store`.
"""
