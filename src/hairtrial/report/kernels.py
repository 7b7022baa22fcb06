"""Jupyter kernels forked from a process that has already imported what the notebooks import.

jupyter_client starts every kernel as a new Python interpreter (``python -m
ipykernel_launcher -f <connection file>``), which then imports ipykernel, IPython, zmq and
tornado, and the notebook's first cell imports pandas, matplotlib and this package: about
2 CPU seconds a notebook before it computes anything, more than most of our notebooks spend
computing. A :class:`KernelForkServer` pays those imports once: it starts one interpreter
(the *zygote*) that imports ipykernel and the modules the notebooks import, and forks a
kernel from it for each notebook. Each kernel is a fresh process with nothing of another
notebook's state (no variables, figures, warnings already shown, random state): the
zygote has only imported modules and never executes a cell.

Hand-written because no maintained library does this: jupyter_client's provisioner API
(:class:`~jupyter_client.provisioning.LocalProvisioner`) lets a kernel be started another
way, and :class:`ForkingProvisioner` uses it; everything else (connection files, ports,
messaging, shut-down, interrupts by signal) is jupyter_client's and ipykernel's own.

A kernel is forked only when the kernel spec is the standard ipykernel one of this
interpreter and the platform has ``os.fork``; otherwise, or when the zygote could not start,
the kernel is started as jupyter_client would.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.provisioning import LocalProvisioner

log = logging.getLogger("hairtrial")

#: What the zygote imports before any notebook's own imports (the kernel itself).
KERNEL_MODULES = ("ipykernel.kernelapp",)

#: The zygote's program, run as a script so that nothing of this package is imported in it
#: (nor, then, in a kernel).
ZYGOTE = Path(__file__).with_name("zygote.py")

#: Seconds to wait for the zygote's answer (its imports included, a few seconds).
REPLY_TIMEOUT = 120.0

_LAUNCHER = ("-m", "ipykernel_launcher")
"""A kernel spec's ``argv[1:3]`` for the standard ipykernel kernel."""


def forkable(cmd: list[str]) -> bool:
    """Whether the kernel command ``cmd`` starts the standard ipykernel of this interpreter."""
    if not hasattr(os, "fork") or len(cmd) < 3 or tuple(cmd[1:3]) != _LAUNCHER:
        return False
    try:
        return os.path.samefile(cmd[0], sys.executable)
    except OSError:
        return False


class KernelForkServer:
    """One zygote process that forks kernels; a context manager.

    Parameters
    ----------
    modules : iterable of str
        Modules the zygote imports besides ipykernel (those the notebooks import). A module
        that fails to import there is left to the notebook, which then fails with its own
        traceback.
    in_kernel : iterable of str
        Modules the zygote imports after those, as they are imported in a kernel: what a
        library sees of a kernel when imported in one (``get_ipython()`` answers with a
        shell that has a kernel; ``sys.stdout`` encodes UTF-8, as ipykernel's streams do)
        is there while they import (pandas picks ``display.max_columns`` and
        ``display.encoding`` by these at import).
    env : dict, optional
        The zygote's environment (default: this process's): modules read some variables at
        import (matplotlib reads ``MPLBACKEND``), so it should be the kernels' environment.
    """

    def __init__(
        self,
        modules: Iterable[str] = (),
        env: dict[str, str] | None = None,
        *,
        in_kernel: Iterable[str] = (),
    ) -> None:
        self.modules = [*KERNEL_MODULES, *dict.fromkeys(modules)]
        self.in_kernel = list(dict.fromkeys(in_kernel))
        self.env = dict(os.environ if env is None else env)
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: socket.socket | None = None
        self._file: Any = None
        self._lock = threading.Lock()
        self._ready = False
        self._failed = not hasattr(os, "fork")
        self._exited: dict[int, int] = {}

    # -- life cycle ---------------------------------------------------------------------
    def start(self) -> KernelForkServer:
        """Start the zygote (it imports in the background; :meth:`fork` waits for it)."""
        if self._failed or self._proc is not None:
            return self
        ours, theirs = socket.socketpair()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, str(ZYGOTE), str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                env=self.env,
                pass_fds=[theirs.fileno()],
                start_new_session=True,  # a Ctrl-C reaches this job, which closes the zygote
            )
        except OSError as err:
            log.info("kernels: no fork server (%s); each kernel starts its own interpreter", err)
            self._failed = True
            ours.close()
            return self
        finally:
            theirs.close()
        ours.settimeout(REPLY_TIMEOUT)  # a zygote that hangs: kernels start as usual
        self._conn = ours
        self._file = ours.makefile("rwb")
        try:
            self._send({"modules": self.modules, "in_kernel": self.in_kernel})
        except OSError as err:  # it ended at once: kernels start as usual
            log.info("kernels: fork server failed (%s); starting kernels as usual", err)
            self._failed = True
        return self

    def close(self) -> None:
        """Stop the zygote; it kills any kernel of its still running."""
        if self._proc is None:
            return
        with contextlib.suppress(OSError):
            self._file.close()
            assert self._conn is not None
            self._conn.close()
        try:  # it ends when it reads the end of the socket; one that failed is not waited for
            self._proc.wait(timeout=0.1 if self._failed else 10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def __enter__(self) -> KernelForkServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests -----------------------------------------------------------------------
    def _send(self, message: dict[str, Any]) -> None:
        self._file.write(json.dumps(message).encode() + b"\n")
        self._file.flush()

    def _receive(self) -> dict[str, Any]:
        line = self._file.readline()
        if not line:
            raise OSError("the kernel fork server ended")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def _request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send a request and read its answer; after any failure the zygote is not asked
        again (a late answer would be taken for the next request's)."""
        with self._lock:
            try:
                if not self._ready:
                    self._ready = self._receive().get("ready") is True
                self._send(message)
                return self._receive()
            except (OSError, ValueError):
                self._failed = True
                raise

    @property
    def pid(self) -> int | None:
        """The zygote's process id (``None`` when it is not running)."""
        return None if self._proc is None else self._proc.pid

    @property
    def usable(self) -> bool:
        """Whether kernels are forked (the zygote started and answers)."""
        return not self._failed and self._proc is not None

    def fork(self, args: list[str], cwd: str | Path, env: dict[str, str]) -> int | None:
        """Fork a kernel: ``args`` as ipykernel_launcher's, in ``cwd`` with ``env``.

        Returns its process id, or ``None`` when the zygote cannot fork (the caller then
        starts the kernel as usual).
        """
        if not self.usable:
            return None
        try:
            answer = self._request({"fork": list(args), "cwd": str(cwd), "env": env})
        except (OSError, ValueError) as err:
            log.info("kernels: fork server failed (%s); starting kernels as usual", err)
            self._failed = True
            return None
        pid = answer.get("pid")
        return pid if isinstance(pid, int) else None

    def poll(self, pid: int) -> int | None:
        """A forked kernel's exit code, or ``None`` while it runs."""
        if pid in self._exited:
            return self._exited[pid]
        if self.usable:
            try:
                code = self._request({"poll": pid}).get("exited")
            except (OSError, ValueError):
                pass
            else:
                if code is not None:
                    self._exited[pid] = int(code)
                return self._exited.get(pid)
        # no zygote to ask (gone, or closed and its kernels killed): running while it exists
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            self._exited[pid] = -signal.SIGKILL
            return self._exited[pid]
        except PermissionError:
            pass
        return None


class ForkedKernel:
    """The part of :class:`subprocess.Popen` that a provisioner uses, for a forked kernel."""

    stdin = stdout = stderr = None

    def __init__(self, server: KernelForkServer, pid: int) -> None:
        self.server = server
        self.pid = pid

    def poll(self) -> int | None:
        return self.server.poll(self.pid)

    def wait(self, timeout: float | None = None) -> int:
        end = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if end is not None and time.monotonic() > end:
                raise subprocess.TimeoutExpired(["kernel"], timeout or 0.0)
            time.sleep(0.01)
        return code

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkingProvisioner(LocalProvisioner):
    """jupyter_client's local provisioner, but the kernel is forked by a :class:`KernelForkServer`.

    Set :attr:`server` before the kernel starts (the kernel manager's ``provisioner``).
    """

    server: KernelForkServer | None = None

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        pid = None
        if self.server is not None and forkable(cmd):
            env = dict(kwargs.get("env") or os.environ)
            cwd = kwargs.get("cwd") or os.getcwd()
            pid = self.server.fork(cmd[3:], cwd, env)
        if pid is None:
            return await super().launch_kernel(cmd, **kwargs)
        assert self.server is not None
        # duck-typed: the provisioner uses only pid, poll, wait, the signals and std streams
        self.process = ForkedKernel(self.server, pid)  # type: ignore[assignment]
        self.pid = self.pgid = pid  # the kernel leads its own session, as Popen's would
        self.cwd = kwargs.get("cwd") or os.getcwd()
        return self.connection_info


@contextlib.contextmanager
def fork_server(
    modules: Iterable[str] = (), *, in_kernel: Iterable[str] = ()
) -> Iterator[KernelForkServer]:
    """A started :class:`KernelForkServer`, closed on exit."""
    server = KernelForkServer(modules, in_kernel=in_kernel).start()
    try:
        yield server
    finally:
        server.close()
