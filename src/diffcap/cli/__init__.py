"""The ``diffcap`` command line. One small module per command group; see :mod:`.main`."""
