"""Published test vectors for the federation tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "data" / "federation"


def load_vector(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))
