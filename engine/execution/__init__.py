"""How a definition's code runs: the only evaluator of expressions and scripts (`expressions`, an AST
whitelist), the domain functions they may call, bound to the command's clock and the rule tables in force
(`functions`), and SpiffWorkflow adapted (`spiff`: clock-aware timers, instance-only serialization). Imports
`rules` and `clock` only, so deploy checks and commands share one evaluator.
"""
