"""The ``adaqp`` command line: parses arguments and dispatches lazily to the components."""
