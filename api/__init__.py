"""Adapters that people and other systems use to reach the engine: the command line, and (next) HTTP."""
