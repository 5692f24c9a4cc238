"""Regenerate the README's configuration reference from the declarations (``make docs``)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from vigil.settings import read_declarations, reference_markdown

START, END = "<!-- settings:start -->\n", "<!-- settings:end -->"


def update_readme(path: Path) -> bool:
    """Rewrite the block between the markers; return whether anything changed."""
    text = path.read_text(encoding="utf-8")
    block = START + reference_markdown(read_declarations()) + END
    new = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":
    changed = update_readme(Path(sys.argv[1] if len(sys.argv) > 1 else "README.md"))
    print("README.md updated" if changed else "README.md already up to date")
