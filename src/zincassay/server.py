"""A warm process that runs workflow steps, so a batch does not pay Python's imports once per job.

Every Snakemake job is a fresh process, and importing numpy, pandas, scipy and matplotlib costs
about a second, more than many per-sample steps themselves. On a local run the workflow starts
``zincassay serve`` once: it imports everything, listens on a Linux abstract Unix socket, and for
each job forks a copy of itself that runs the step (``zincassay.cli.main``) with the job's working
folder, environment, arguments and standard streams (passed as file descriptors). The job's own
process (:func:`run_remote`) only connects, waits and exits with the step's exit status, so logs,
exit codes and outputs are exactly those of a fresh process.

Safety: a forked copy has the modules of a fresh process and no other state (the server runs no
step itself). If the job's process dies (Snakemake cancels it), the step's copy is killed. If no
server is listening (cluster nodes, other systems, ``ZINCASSAY_SERVER=off``), the job runs in its
own process as before. The server exits after ``idle`` seconds without a job.
"""

from __future__ import annotations

import array
import json
import os
import signal
import socket
import sys
import time

__all__ = ["ENV", "enable_server", "run_remote", "serve"]

#: Environment variable naming the server's socket (set by the workflow for its jobs).
ENV = "ZINCASSAY_SERVER"
_MAX_REQUEST = 1 << 20


def _address(name: str) -> str:
    return "\0" + name  # Linux abstract namespace: no file to clean up, no path-length trouble


def _send_fds(sock: socket.socket, payload: bytes, fds: list[int]) -> None:
    sock.sendmsg([len(payload).to_bytes(4, "big") + payload],
                 [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])


def _recv_request(conn: socket.socket) -> tuple[dict, list[int]]:
    fds = array.array("i")
    msg, anc, _, _ = conn.recvmsg(_MAX_REQUEST, socket.CMSG_LEN(3 * fds.itemsize))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    size = int.from_bytes(msg[:4], "big")
    body = msg[4:]
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            raise ConnectionError("request cut short")
        body += chunk
    return json.loads(body), list(fds)


def enable_server() -> None:
    """Let this process's jobs share a warm server (called by the workflow for a local run): name
    one in ``$ZINCASSAY_SERVER`` unless it is ``off``. The first job starts it."""
    if os.environ.get(ENV) != "off":
        os.environ[ENV] = f"zincassay-{os.getpid()}"


def _connect(name: str, wait_s: float) -> socket.socket | None:
    deadline = time.monotonic() + wait_s
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(_address(name))
            return sock
        except OSError:
            sock.close()
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)


def _start_server(name: str) -> None:
    """Start ``zincassay run serve`` in the background, detached from this job (its own session)."""
    import subprocess

    subprocess.Popen([sys.executable, "-m", "zincassay", "run", "serve", "--name", name],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True, cwd="/")


def run_remote(argv: list[str]) -> int | None:
    """Run ``zincassay argv`` in the warm server named by ``$ZINCASSAY_SERVER``, starting the server
    if none answers (it binds its name before importing, so this job waits in its queue).

    Returns the step's exit status, or None when no server can be reached (the caller then runs the
    step in its own process).
    """
    name = os.environ.get(ENV, "")
    if not name or name == "off" or not sys.platform.startswith("linux"):
        return None
    sock = _connect(name, 0.0)
    if sock is None:
        _start_server(name)  # two jobs may both start one: the second cannot bind and exits
        sock = _connect(name, 5.0)
        if sock is None:
            return None
    request = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        _send_fds(sock, request, [0, 1, 2])
        reply = b""
        while len(reply) < 4:
            chunk = sock.recv(4 - len(reply))
            if not chunk:
                return None if not reply else 1
            reply += chunk
    except OSError:
        return None
    finally:
        sock.close()
    return int.from_bytes(reply, "big", signed=True)


def _run_step(request: dict, fds: list[int]) -> int:
    """In the forked worker: become the job's process, then run the step."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for target, fd in zip((0, 1, 2), fds, strict=False):
        os.dup2(fd, target)
        os.close(fd)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    sys.stdin = os.fdopen(0, "r", closefd=False)
    sys.stdout = os.fdopen(1, "w", closefd=False)
    sys.stderr = os.fdopen(2, "w", closefd=False)
    from zincassay.cli import main

    try:
        code = main(request["argv"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    return int(code or 0)


def _handle(conn: socket.socket) -> None:
    """In a child of the server: run one job's step in a grandchild and report its status; kill
    the step if the job's process goes away."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    request, fds = _recv_request(conn)
    pid = os.fork()
    if pid == 0:
        conn.close()
        os.setpgid(0, 0)
        os._exit(_run_step(request, fds))
    for fd in fds:
        os.close(fd)
    conn.setblocking(False)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            try:
                conn.setblocking(True)
                conn.sendall(int(code if code >= 0 else 128 - code).to_bytes(4, "big", signed=True))
            except OSError:
                pass
            return
        try:
            if conn.recv(1) == b"":  # the job's process is gone: stop its step
                os.killpg(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return
        except BlockingIOError:
            pass
        time.sleep(0.02)


#: What every step needs, imported once by the server.
PRELOAD = ("zincassay.cli", "zincassay.status", "zincassay.cfse.figures", "zincassay.cfse.tables",
           "zincassay.imaging.figures", "zincassay.imaging.tables", "zincassay.conditions.figures",
           "zincassay.conditions.pipeline", "zincassay.conditions.overview", "zincassay.beadplex.figures",
           "zincassay.beadplex.tables", "zincassay.elisa.figures", "zincassay.elisa.tables")


def serve(name: str, *, idle_s: float = 30.0) -> int:
    """Listen as ``name``, import the workflow's modules, then run steps for jobs until ``idle_s``
    seconds pass without one. Jobs that connect while the imports run wait in the queue."""
    import importlib

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(_address(name))
    except OSError:  # another server already has the name
        return 0
    sock.listen(64)
    for module in PRELOAD:
        importlib.import_module(module)
    sock.settimeout(idle_s)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # handlers are reaped automatically
    while True:
        try:
            conn, _ = sock.accept()
        except TimeoutError:
            return 0
        conn.settimeout(None)
        if os.fork() == 0:
            sock.close()
            try:
                _handle(conn)
            finally:
                os._exit(0)
        conn.close()
