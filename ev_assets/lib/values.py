"""Value coercion for the sources, in one place: the feeds send strings for numbers, and newer versions change types.

Each helper has one rule, and its name says which; where two sources need different rules, they are two helpers
(see the notes). Every one of them returns None for a value it cannot use, never raises.

Left where they are, because their rules differ from these (merging them would change what loads):
- `sessions.records._text` / `_number`: text is stripped (blank is None) and a value that is not a number raises
  the row's `RowError` (a blank string too, and NaN or inf load), where `number` says why beside None;
- `telemetry.parse._text` and `ml.sessions.data._text` work on whole pandas Series,
  `ml.serving.session_rows._text` keeps NaT as text.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

# json.dumps(value, **these) builds an encoder per call: built once, they write the same text.
# A record kept as JSON text (quarantined records, attribute hashes): json.dumps(value, ensure_ascii=False, default=str).
record_json = json.JSONEncoder(ensure_ascii=False, default=str).encode
_STABLE_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def identifier(value: Any) -> str | None:
    """An id: a string or an integer (not a bool) as stripped text; None for anything else or a blank."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value).strip()
    return text or None


def text(value: Any) -> str | None:
    """Text as it came (None stays None); objects and lists as stable JSON text, anything else as str()."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json_text(value)
    return str(value)


def cell_text(value: Any) -> str | None:
    """A frame cell as text: None for a missing value (None, NaN, NaT, NA), lists and objects as str()."""
    if value is None or (not isinstance(value, (list, dict)) and pd.isna(value)):
        return None
    return str(value)


def json_text(value: Any) -> str | None:
    """Stable JSON text (sorted keys), so an attribute hash does not depend on key order."""
    if value is None:
        return None
    return _STABLE_JSON.encode(value)


def joined(value: Any) -> str | None:
    """A list as its items joined by commas; anything else as `text`."""
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return text(value)


def boolean(value: Any) -> bool | None:
    """A bool, 0/1, or "true"/"false"/"1"/"0" (any case, blanks around); None for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    return None


def number(value: Any) -> tuple[float | None, str | None]:
    """(number, problem): absent or empty is NULL without a problem; a value that is not a number is one."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    if isinstance(value, bool):
        return None, f"is not a number ({value!r})"
    try:
        found = float(value)
    except (TypeError, ValueError):
        return None, f"is not a number ({value!r})"
    if not math.isfinite(found):
        return None, f"is not a finite number ({value!r})"
    return found, None


def finite_float(value: Any) -> float | None:
    """`number` without the reason: a finite float, or None (bools, text that is no number, NaN, inf)."""
    return number(value)[0]


def integer(value: Any) -> int | None:
    """An integer id or count, or None; bools and fractional numbers are not integers."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    found = finite_float(value)
    return int(found) if found is not None and found.is_integer() else None
