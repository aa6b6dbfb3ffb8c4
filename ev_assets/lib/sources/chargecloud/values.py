"""chargecloud values: response times, and the coercion of the feed's values (the API sends strings for numbers,
and newer versions may change types)."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime, timezone
from typing import Any

from ev_assets.lib.sources.chargecloud.slots import SOURCE_TZ

# json.dumps(value, **these) builds an encoder per call: built once, they write the same text.
_RECORD_JSON = json.JSONEncoder(ensure_ascii=False, default=str)  # quarantined records, attribute hashes
_STABLE_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))  # sorted keys


def poll_time(envelope: Any) -> datetime | None:
    """When a stored poll was taken: the earliest response `timestamp` in it (UTC), None if it has none."""
    if not isinstance(envelope, dict):
        return None
    times = [
        parse_time(response.get("timestamp"))
        for key, response in envelope.items()
        if not str(key).startswith("_") and isinstance(response, dict)
    ]
    return min((t for t in times if t is not None), default=None)


def parse_time(value: Any) -> datetime | None:
    """An ISO timestamp as UTC; without an offset it is German local time like all the endpoint's times."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        t = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return (t.replace(tzinfo=SOURCE_TZ) if t.tzinfo is None else t).astimezone(timezone.utc)


def _id(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value).strip()
    return text or None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return _json_text(value)
    return str(value)


def _json_text(value: Any) -> str | None:
    """Stable JSON text (sorted keys), so the attribute hash does not depend on key order."""
    if value is None:
        return None
    return _STABLE_JSON.encode(value)


def _joined(value: Any) -> str | None:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return _text(value)


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    return None


def _number(value: Any) -> tuple[float | None, str | None]:
    """(number, problem): absent or empty is NULL without a problem; a value that is not a number is one."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    if isinstance(value, bool):
        return None, f"is not a number ({value!r})"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None, f"is not a number ({value!r})"
    if not math.isfinite(number):
        return None, f"is not a finite number ({value!r})"
    return number, None



def _hash(attrs: tuple) -> str:
    return hashlib.sha1(_RECORD_JSON.encode(attrs).encode("utf-8")).hexdigest()


def _without(record: dict, key: str) -> dict:
    """The record without its children: they are loaded (or quarantined) on their own."""
    return {k: v for k, v in record.items() if k != key}
