"""Adapters that people and other systems use to reach the engine: the command line (`cli`) and HTTP (`http`).
They call `engine.service.Engine` and hold no SQL; `cli` may use `http` (to serve it), never the reverse.
"""
