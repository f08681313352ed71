"""Cases: the commands and their one transaction each (`commands`), the same commands on behalf of a principal
with scope checks (`acting`), the read side (`queries`), the state hash and event hash chain (`history`).
May import `access`, `deadlines`, `definitions`, `delivery`, `execution` and `store`.
"""
