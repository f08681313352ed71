"""Events out: the outbox written in each command's transaction (`outbox`) and signed webhook deliveries
with retries (`webhooks`). May import `deadlines` (the yellow share) and `store`.
"""
