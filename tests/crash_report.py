"""The crash tests' figures, written to docs/reliability.md under "Crashes and killed saves" when
GANINTERFACE_WRITE_REPORTS=1 (otherwise the tests only check behaviour)."""

from __future__ import annotations

import os
from pathlib import Path

REPORT = Path(__file__).parents[1] / "docs" / "reliability.md"
HEADING = "## Crashes and killed saves"


def write_section(title: str, body: str) -> None:
    """Replace (or add) the ``### title`` part of this heading's section; other sections stay."""
    if os.environ.get("GANINTERFACE_WRITE_REPORTS") != "1":
        return
    text = REPORT.read_text(encoding="utf-8") if REPORT.exists() else "# Reliability\n"
    lines = text.splitlines()
    if HEADING not in lines:
        lines += ["", HEADING]
    start = lines.index(HEADING) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    part = [f"### {title}", "", *body.splitlines(), ""]
    heading = f"### {title}"
    if heading in lines[start:end]:
        first = lines.index(heading, start)
        last = next((i for i in range(first + 1, end) if lines[i].startswith(("## ", "### "))), end)
        lines[first:last] = part
    else:
        lines[end:end] = ["", *part] if lines[end - 1].strip() else part
    REPORT.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
