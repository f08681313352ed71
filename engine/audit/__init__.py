"""For auditors (条例 §22): verify chains against signed checkpoints (`trail`), replay recorded commands
(`replay`), a case as it was at a moment (`asof`), the dossier (`dossier`), and every rule-table version the
engine ran with (`rule_tables`). May import `cases`, `deadlines`, `execution` and `store`.
"""
