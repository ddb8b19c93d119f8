"""The `prox` process: runs one command, then ends the process with the command's exit status.

pyarrow's C++ thread pools can abort the interpreter while it tears itself down, after the command
has done all its work ("terminate called without an active exception", exit status -6 or 134;
apache/arrow#34314). A finished refine run, or a verify that printed OK, would then look failed to
cron or to a Slurm script. So the process ends with `os._exit` once Python's exit handlers have run:
the handler below is registered before anything else is imported, and handlers run last-registered
first, so vLLM, Ray and multiprocessing have shut down their processes by the time it runs.
"""

import atexit
import logging
import os
import sys

_UNHANDLED = 1  # Python's status for an exception that escaped; click handles its own


def run() -> None:
    status = [_UNHANDLED]
    atexit.register(_end_process, status)
    from prox.cli import main

    try:
        main(prog_name="prox")
    except SystemExit as done:
        status[0] = _exit_status(done.code)
        raise
    except KeyboardInterrupt:
        status[0] = 130
        raise


def _exit_status(code: object) -> int:
    """Python's rule: None is success, an int is itself, anything else is printed and means 1."""
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def _end_process(status: list[int]) -> None:
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe, a closed file: nothing more can be said there
            pass
    os._exit(status[0])


if __name__ == "__main__":  # worker processes started with spawn import this module too
    run()
