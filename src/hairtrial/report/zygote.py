"""The parent of forked Jupyter kernels (see :mod:`hairtrial.report.kernels`).

Run as a script, ``python zygote.py FD``, so that it imports nothing of this package: a
kernel forked from it has only what ipykernel and the requested modules imported. Only the
standard library here.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import importlib.util
import json
import os
import signal
import socket
import sys
import traceback
from collections.abc import Iterator
from typing import Any


def serve(fd: int) -> None:
    """The zygote's main loop (run by :meth:`KernelForkServer.start` in a new interpreter).

    Reads one JSON request per line from the socket ``fd``: first the modules to import,
    then ``fork`` and ``poll`` requests; ends (killing its kernels) when the socket closes.
    """
    conn = socket.socket(fileno=fd)
    stream = conn.makefile("rwb")

    def answer(message: dict[str, Any]) -> None:
        stream.write(json.dumps(message).encode() + b"\n")
        stream.flush()

    # kernels forked here have this process as parent: ipykernel reads the variable at
    # import and exits when its parent is gone
    os.environ["JPY_PARENT_PID"] = str(os.getpid())
    first = json.loads(stream.readline() or b"{}")
    for name in first.get("modules", []):
        _preload(name)
    with _as_in_a_kernel():
        for name in first.get("in_kernel", []):
            _preload(name)
    answer({"ready": True})
    children: dict[int, int | None] = {}
    try:
        for line in stream:
            request = json.loads(line)
            if "fork" in request:
                pid = os.fork()
                if pid == 0:
                    os.close(conn.detach())  # the kernel must not hold (or later close) it
                    _run_kernel(request["fork"], request["cwd"], request["env"])
                children[pid] = None
                answer({"pid": pid})
            elif "poll" in request:
                pid = int(request["poll"])
                if children.get(pid) is None and pid in children:
                    done, status = os.waitpid(pid, os.WNOHANG)
                    if done:
                        children[pid] = os.waitstatus_to_exitcode(status)
                answer({"exited": children.get(pid, 0)})
    finally:
        for pid, code in children.items():
            if code is None:
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)  # the kernel and what it started
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)  # had it not yet led its own group
                with contextlib.suppress(OSError):
                    os.waitpid(pid, 0)


def _preload(name: str) -> None:
    # a module that fails here is left to the notebook importing it, which gets the error
    with contextlib.suppress(Exception):
        importlib.import_module(name)


@contextlib.contextmanager
def _as_in_a_kernel() -> Iterator[None]:
    """What a library imported in a Jupyter kernel sees of it, while modules are imported
    here: ``get_ipython()`` (IPython's builtin in a kernel) answers with a shell that has a
    ``kernel``, and ``sys.stdout`` encodes UTF-8, as ipykernel's streams do. pandas reads
    both when imported: ``display.max_columns`` is 20 in a kernel (0, the terminal's width,
    elsewhere) and ``display.encoding`` is the stream's encoding."""
    import builtins
    import io

    shell = type("KernelShell", (), {"kernel": object()})()
    stdout = sys.stdout
    builtins.get_ipython = lambda: shell  # type: ignore[attr-defined]
    sys.stdout = io.TextIOWrapper(io.BytesIO(), encoding="UTF-8")
    try:
        yield
    finally:
        sys.stdout = stdout
        del builtins.get_ipython  # type: ignore[attr-defined]


def _run_kernel(args: list[str], cwd: str, env: dict[str, str]) -> None:
    """In a forked child: become a kernel as ``python -m ipykernel_launcher *args`` would."""
    code: int = 1
    try:
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)  # a kernel's stdin is closed (jupyter_client closes its pipe)
        os.close(devnull)
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        from ipykernel import kernelapp

        launcher = importlib.util.find_spec("ipykernel_launcher")
        sys.argv = [launcher.origin if launcher and launcher.origin else "", *args]

        kernelapp.launch_new_instance(argv=args)
        code = 0
    except SystemExit as end:
        code = end.code if isinstance(end.code, int) else (0 if end.code is None else 1)
    except BaseException:  # noqa: BLE001 - reported on the kernel's stderr, as a kernel would
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    # as ipykernel_launcher does for the working folder: this script's folder is not on
    # sys.path (IPython puts the working folder back when a kernel starts)
    del sys.path[0]
    # ends without the interpreter's last garbage collections, as the workflow's processes do
    # (hairtrial.core.runlog.skip_final_collection; this script imports nothing of the package)
    atexit.register(gc.freeze)
    serve(int(sys.argv[1]))
