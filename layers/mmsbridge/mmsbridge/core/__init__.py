"""Pure building blocks shared by every feature: no I/O, no AWS, no HTTP."""
