"""The events feature: the state table's stream turned into EventBridge events (source `mmsbridge`), published
at least once, each with a stable id.

Pure: `changes` (stream records -> events: which item kinds publish what, and when a state really changed).
Adapters: `stream_records` (Lambda's DynamoDB JSON -> plain items), `partitions` (the reads a decision
needs), `publisher` (PutEvents). `relay` runs one stream batch through them and says where to checkpoint.
May import mmsbridge.core and mmsbridge.aws; never the other features (the item shapes it reads are the
table model's, checked against the planner's and the ledger's output by the tests).
"""
