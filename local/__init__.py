"""Local stack: run the SAM template's real handlers in-process on moto, wired from template.yaml."""
