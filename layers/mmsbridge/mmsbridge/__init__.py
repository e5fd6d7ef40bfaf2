"""mmsbridge: the domain code of the ingest, consumer, sender and stale functions, by feature.

- `core`: pure building blocks every feature shares (times, phone numbers, backoff, message states, the
  postback queue's envelope, the state table's key shapes).
- `aws`: the adapters every feature shares (boto3 clients, the state table, the raw-postback archive).
- `ingest`, `postbacks`, `sending`: the three features; none imports another.
- `config`, `observability`: what the handlers share (settings from the environment, logs and metrics).

No package re-exports its modules: a function imports only the modules of its own feature.
"""
