"""Sub-commands of the `cautionflow` command line; each module has `register(subparsers)`.

A command's handler returns an exit code. `run ...` steps print one JSON summary as the
last line of stdout; errors are one line on stderr and a non-zero exit.
"""
