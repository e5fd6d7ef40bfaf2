"""The commands of `python -m ops`, one module per group: each `register(commands)` adds its subcommands
(their arguments and help) and holds their handlers, which read through the modules of `ops` and write the
answer through `ops.output`. `ops.cli` assembles them.
"""
