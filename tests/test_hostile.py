"""Hostile inputs: every malformed value that reaches a parser, loader or CLI option is
refused with one clear line (a SuperposeError, exit code 2 on the CLI), never a traceback."""
