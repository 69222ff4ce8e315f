"""The engine: the stage contract, the executors (local, Ray) that run stages over rows,
the pipeline of segments and barriers, rows, run control and run reports. It knows no
concrete stage, input or output format (see :mod:`diffcap.stages`, :mod:`diffcap.io`)."""
