"""The HTTP API: the Flask app (`app`), bearer authentication (`auth`), one error shape (`errors`), request hooks
for idempotency and metrics, masking by role (`present`), marshmallow schemas, one Blueprint per resource
(`resources/`) and the offline docs' assets (`static/`).
"""
