"""The live path: each poll's status changes and each charging event through a message broker into live state.

The batch path (raw pulls -> ingestion -> dbt) stays the source of truth for history; the live path makes *now*
current. Plain logic only (no Dagster):

- `broker`: starts and stops a NATS JetStream server that the project owns (store under the data root).
- `bus`: the small publish / consume interface (`Bus`, `Subscription`, `Message`) and its NATS implementation;
  a Kafka client could implement the same three methods.
- `messages`: what travels: status changes of charging points and connectors, poll-complete markers and
  OCPP-like charging events (start / meter / stop), as JSON with a stable message id.
- `changes`: the status changes of one stored poll against the poll before it, from the batch flattener.
- `landing`: writing the landing store (SQLite): every message landed once (by stream sequence and message id)
  before it is acknowledged, the live state updated in the same transaction.
- `store`: the landing store's file and its readers (read-only): the live state, its history and freshness, read
  by the service, the dashboard and the live sensors.
- `consumer`: the loop that fetches, lands and acknowledges.
- `feeds`: the publishers: the poller (simulated / replay / live chargecloud) and the charging-event feed
  (simulated in real time on an accelerated clock, or replayed JSONL files).
"""
