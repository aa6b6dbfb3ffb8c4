import gzip
import hashlib
import json
from datetime import datetime, timezone

from ev_assets.lib import rawstore


def test_a_pull_is_written_once_compressed_and_hashed(data_dir):
    first = rawstore.write_raw(data_dir, "src", "2022/01/10/poll_x", {"a": 1})
    assert first.written and first.path.suffixes[-2:] == [".json", ".gz"]
    body = gzip.decompress(first.path.read_bytes())
    assert hashlib.sha256(body).hexdigest() == first.sha256
    assert first.sha256[:12] in first.path.name

    again = rawstore.write_raw(data_dir, "src", "2022/01/10/poll_x", {"a": 2})
    assert not again.written and again.path == first.path
    assert first.load() == {"a": 1}  # the first pull is kept untouched
    assert len(list(data_dir.rglob("*.json.gz"))) == 1


def test_slots_are_listed_in_their_window(data_dir):
    slots = [datetime(2022, 1, 10, 23, 50, tzinfo=timezone.utc), datetime(2022, 1, 11, 0, 0, tzinfo=timezone.utc)]
    for slot in slots:
        rawstore.write_raw(data_dir, "cc", rawstore.slot_key(slot), {"slot": slot.isoformat()})
    found = rawstore.stored_slots(data_dir, "cc", slots[0], datetime(2022, 1, 12, tzinfo=timezone.utc))
    assert [s for s, _ in found] == slots
    assert [json.loads(json.dumps(f.load()))["slot"] for _, f in found] == [s.isoformat() for s in slots]
    assert rawstore.stored_slots(data_dir, "cc", slots[1], slots[1]) == []


def test_identical_content_makes_one_pull(data_dir):
    a = rawstore.write_pull(data_dir, "ocm", [{"ID": 1}], prefix="ocm")
    b = rawstore.write_pull(data_dir, "ocm", [{"ID": 1}], prefix="ocm")
    c = rawstore.write_pull(data_dir, "ocm", [{"ID": 2}], prefix="ocm")
    assert a.path == b.path and not b.written
    assert c.path != a.path
