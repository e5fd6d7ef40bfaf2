"""Fuzzing of the parsers of outside input: `make fuzz` (python -m fuzz). The contracts are in targets.py."""
