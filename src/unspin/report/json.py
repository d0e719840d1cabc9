"""JSON report: the pydantic :class:`~unspin.analysis.Analysis` models, serialised.

One input gives one ``Analysis`` object; several inputs give a JSON array of them. The schema
(``python -m unspin.report.json --schema``) is committed as docs/schema.json.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from unspin.analysis import Analysis, json_schema

__all__ = ["render_json", "schema_text"]


def render_json(analyses: Sequence[Analysis]) -> str:
    """One object for one analysis, an array for several; 2-space indent, UTF-8 kept."""
    items = [a.model_dump(mode="json") for a in analyses]
    data: object = items[0] if len(items) == 1 else items
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def schema_text() -> str:
    """The JSON Schema of the report, as committed in docs/schema.json."""
    return json.dumps(json_schema(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":  # python -m unspin.report.json --schema > docs/schema.json
    if sys.argv[1:] != ["--schema"]:
        sys.exit("usage: python -m unspin.report.json --schema")
    sys.stdout.write(schema_text())
