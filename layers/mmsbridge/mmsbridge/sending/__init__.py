"""The sending feature: send requests validated, sent at most once at the account's pace, recorded, and
outcome-unknown sends reconciled."""
