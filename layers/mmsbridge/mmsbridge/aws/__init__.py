"""The AWS adapters every feature shares: boto3 clients, the state table, the raw-postback archive."""
