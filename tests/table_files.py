"""Rules tables written as a spreadsheet saves them, for the tests that feed a loader good and bad files."""
import json

import pytest

VALID_META = {"version": "t.1", "effective_from": "2026-01-01"}


def write_csv(path, header, *lines, meta=None, encoding="utf-8", line_end="\r\n"):
    """The CSV at `path` and, unless `meta` is False, its meta file beside it (`meta`, or a valid one)."""
    path.write_bytes((line_end.join([header, *lines]) + line_end).encode(encoding))
    if meta is not False:
        meta_text = json.dumps(meta if meta is not None else VALID_META)
        path.with_name(path.name.removesuffix(".csv") + ".meta.json").write_text(meta_text, encoding="utf-8")
    return path


def raised(error, load, *args, **options):
    """The `error` that `load(*args, **options)` raises."""
    with pytest.raises(error) as caught:
        load(*args, **options)
    return caught.value
