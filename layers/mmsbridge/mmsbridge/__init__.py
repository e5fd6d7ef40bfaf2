"""mmsbridge: the domain code shared by the ingest, consumer and sender functions."""
