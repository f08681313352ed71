"""Uploads larger than the API's default body limit, for the few endpoints that take files."""
from __future__ import annotations

from flask import request


def upload_limit(blueprint, max_bytes: int) -> None:
    """Let requests to `blueprint` carry up to `max_bytes` (Flask 3.1 reads the limit per request).

    Set in a URL value preprocessor because those run before every before-request hook, and one of those
    (the Idempotency-Key check) may read the body; a larger body is refused with 413 as before."""

    @blueprint.url_value_preprocessor
    def _allow(endpoint, values):
        request.max_content_length = max_bytes
