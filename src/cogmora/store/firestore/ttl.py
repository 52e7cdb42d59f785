"""Documents Firestore deletes by itself: their groups, the Timestamp field a TTL policy
reads, and how long they live.

Commit markers (`txmarks/{id}`, see `store._run_write`) are read back within seconds of
their commit and are garbage after. The policies are declared in
`deploy/firestore.indexes.json` (generated, as `fieldOverrides` with `"ttl": true`, which
`firebase deploy --only firestore` applies; firebase.json itself cannot hold them), with
the field's single-field indexes turned off: nothing queries it, and an index on a
timestamp that only grows is a write hotspot. Firestore deletes an expired document
typically within a day of its expiry.
"""

from __future__ import annotations

from datetime import timedelta

MARKER_GROUP = "txmarks"
MARKER_TTL_FIELD = "expireAt"
MARKER_LIFETIME = timedelta(hours=24)
LOG_GROUP = "feedlog"  # the change feed's log (`feed.LOG_GROUP`); its writer prunes it
# hourly, and the policy is the backstop for a store that stopped before it could.
TTL_POLICIES = (  # (collection group, Timestamp field)
    (MARKER_GROUP, MARKER_TTL_FIELD),
    (LOG_GROUP, MARKER_TTL_FIELD),
)
