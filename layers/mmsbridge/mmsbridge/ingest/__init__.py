"""The ingest feature: who may post, what is admitted, and the body made durable (S3 and SQS) before 200."""
