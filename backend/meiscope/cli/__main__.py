"""`python -m meiscope.cli`: the same as the `meiscope` command."""

from . import main

main()
