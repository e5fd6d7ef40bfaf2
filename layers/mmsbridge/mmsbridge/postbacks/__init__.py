"""The postbacks feature: queued postback bytes read, classified, planned into items and applied."""
