"""The Lambda handlers, one folder per function (CodeUri functions/<name>/, Handler app.lambda_handler).

A package only so that import-linter sees each handler as functions.<name>.app (.importlinter): the
build (functions/Makefile) ships each function's app.py alone, so none of these files is deployed.
"""
