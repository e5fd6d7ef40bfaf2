"""The operator CLI: look inside a running mmsbridge (local or deployed) and replay archived postbacks.

Run it as `python -m ops --help` from the project root; `ops.cli.main` is the entry point.
"""

import importlib.util
import sys
from pathlib import Path

# The domain package lives in the Lambda layer; `make` puts it on .venv's path, this covers any other Python.
if importlib.util.find_spec("mmsbridge") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "layers" / "mmsbridge"))
