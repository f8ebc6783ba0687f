#!/usr/bin/env python3
r"""opencourse HTTP benchmark (Python 3.11 stdlib + wrk).

Starts a throwaway PostgreSQL cluster and the opencourse server (a release binary), seeds a realistic
catalog through the HTTP API, then drives load with wrk over the scenarios below and prints a table of
requests/s, p50 and p99 latency, errors and the server's peak memory; the same report goes to
bench-results/ as markdown and JSON. Normally run through scripts/bench.sh, which builds first:

  scripts/bench.sh                          # release build, then every scenario, 3 rounds of 10 s
  scripts/bench.sh --seconds 5 --rounds 1   # a quick run
  python3 bench/bench.py --binary .build/release/opencourse --scenarios list,get

The methodology is the one of the shared side-by-side harness (compare.py), so its numbers and ours
are measured the same way. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import http.client
import json
import os
import platform
import random
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

SCENARIOS = {  # name -> what one request does
    "health": "GET /health (no database)",
    "list": "GET /api/v1/courses?limit=20 (first catalog page, keyset index)",
    "get": "GET /api/v1/courses/{id}, random seeded course",
    "me": "GET /api/v1/users/me, random student token (JWT check + primary-key read)",
    "create": "POST /api/v1/courses, random instructor token (JWT check + insert)",
    "enroll": "POST /api/v1/courses/{id}/enroll, random student and course (idempotent insert, 201 or 200)",
    "login": "POST /api/v1/auth/login, random student (password hash check + token)",
}
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESOURCE_BUNDLE = "opencourse_OpenCourse.resources"  # the SQL migrations, looked up beside the binary
PAGE = os.sysconf("SC_PAGE_SIZE")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    """A failure with a message meant for the user (no traceback)."""


# ---------------------------------------------------------------- processes and /proc

def proc_table() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, utime + stime ticks) for every live process."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                rest = f.read().rsplit(b")", 1)[1].split()
            table[int(entry)] = (int(rest[1]), int(rest[11]) + int(rest[12]))
        except (OSError, IndexError, ValueError):
            pass
    return table


def tree(root: int, table: dict[int, tuple[int, int]]) -> list[int]:
    """root and all its descendants."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            out.append(pid)
            todo += children.get(pid, [])
    return out


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            pass
    return total


def cpu_ticks(root: int | None, table) -> dict[int, int]:
    """pid -> CPU ticks used so far, for root's process tree."""
    return {p: table[p][1] for p in tree(root, table)} if root else {}


def cpu_delta(before: dict[int, int], after: dict[int, int]) -> int:
    """Ticks used between two snapshots by the processes alive at the second one."""
    return sum(t - before.get(p, 0) for p, t in after.items())


def system_busy_ticks() -> int:
    """user + nice + system + steal ticks of the whole machine (interrupt time is left out: loopback
    networking is accounted there, and it belongs to the benchmark itself)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v[0] + v[1] + v[2] + (v[7] if len(v) > 7 else 0)


def reset_hwm(pid: int) -> bool:
    """Resets the kernel's peak-RSS mark (VmHWM) of pid to its current RSS (best effort)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def vm_hwm_bytes(pid: int) -> int | None:
    """The kernel's peak RSS of pid since start or since reset_hwm (exact, unlike sampling)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def kill_tree(root: int, grace: float = 10.0) -> None:
    """SIGTERM the process group and every descendant, then SIGKILL what is left after `grace` s."""
    pids = tree(root, proc_table())
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(root, sig)
        except (ProcessLookupError, PermissionError):
            pass
        for pid in pids:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.time() + (grace if sig == signal.SIGTERM else 5)
        while time.time() < deadline:
            if all(_gone(p) for p in pids):
                return
            time.sleep(0.1)


def _gone(pid: int) -> bool:
    """True when the process has exited (a zombie waiting to be reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except OSError:
        return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: str, n: int = 40) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return "(no log)"


# ---------------------------------------------------------------- tools

def apt_install(package: str) -> None:
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    cmd = sudo + ["apt-get", "install", "-y", "-q", package]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.run(cmd, env=env, stdout=sys.stderr).returncode != 0:
        subprocess.run(sudo + ["apt-get", "update", "-q"], env=env, stdout=sys.stderr)
        subprocess.run(cmd, env=env, stdout=sys.stderr)


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    log("wrk is not installed: installing the Debian package 'wrk' with apt-get ...")
    apt_install("wrk")
    path = shutil.which("wrk")
    if not path:
        raise BenchError("could not install wrk; install it with `apt-get install wrk` and run again")
    return path


def find_pg_bin(explicit: str | None) -> str:
    def candidates():
        if explicit:
            return [explicit]
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True)
        if shutil.which("pg_config"):
            found.append(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip())
        return found

    def pick():
        return next((c for c in candidates() if c and os.path.exists(os.path.join(c, "pg_ctl"))), None)

    found = pick()
    if not found and not explicit:
        log("PostgreSQL server binaries not found: installing the Debian package 'postgresql' with apt-get ...")
        apt_install("postgresql")
        found = pick()
    if not found:
        raise BenchError("PostgreSQL server binaries not found (initdb, pg_ctl); "
                         "install them with `apt-get install postgresql` or pass --pg-bin DIR")
    return found


# ---------------------------------------------------------------- PostgreSQL

class Postgres:
    """A throwaway cluster in a temporary folder, on a free port, fsync on."""

    USER = "bench"
    DB = "opencourse_bench"

    def __init__(self, bin_dir: str, workdir: str, shared_buffers: str):
        self.bin, self.port = bin_dir, free_port()
        self.home = os.path.join(workdir, "pg")
        self.data = os.path.join(self.home, "data")
        self.sock = os.path.join(self.home, "sock")
        self.log = os.path.join(self.home, "postgres.log")
        self.shared_buffers = shared_buffers
        self.started = False
        # initdb refuses to run as root: then the server runs as the 'postgres' system user.
        self.as_user = []
        if os.geteuid() == 0:
            if not shutil.which("runuser"):
                raise BenchError("running as root needs `runuser` to start PostgreSQL as user postgres")
            if subprocess.run(["id", "postgres"], capture_output=True).returncode != 0:
                subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *cmd, check=True):
        r = subprocess.run(self.as_user + list(cmd), capture_output=True, text=True)
        if check and r.returncode != 0:
            raise BenchError(f"{' '.join(cmd)} failed:\n{r.stdout}{r.stderr}\n{tail(self.log)}")
        return r

    def start(self) -> None:
        os.makedirs(self.sock, mode=0o700)  # also creates self.home
        os.chmod(self.home, 0o700)
        open(self.log, "w").close()
        if self.as_user:
            os.chmod(os.path.dirname(self.home), 0o711)  # the postgres user may pass through, not list
            for p in (self.home, self.sock, self.log):
                shutil.chown(p, "postgres", "postgres")
        self._run(f"{self.bin}/initdb", "-D", self.data, "-U", self.USER, "--auth=trust", "-E", "UTF8",
                  "--no-locale", "--no-sync")
        opts = (f"-c port={self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.sock} "
                f"-c shared_buffers={self.shared_buffers} -c max_connections=500 -c fsync=on "
                # checkpoints only when the harness asks (before each run), not in the middle of one
                "-c checkpoint_timeout=1h -c max_wal_size=8GB")
        self._run(f"{self.bin}/pg_ctl", "-D", self.data, "-l", self.log, "-o", opts, "-w", "-t", "60", "start")
        self.started = True
        self.sql(f'CREATE DATABASE "{self.DB}"')

    def url(self) -> str:
        return f"postgres://{self.USER}:{self.USER}@127.0.0.1:{self.port}/{self.DB}"

    def sql(self, sql: str, db: str = "postgres") -> str:
        psql = os.path.join(self.bin, "psql") if os.path.exists(os.path.join(self.bin, "psql")) else "psql"
        r = subprocess.run([psql, "-h", "127.0.0.1", "-p", str(self.port), "-U", self.USER, "-d", db,
                            "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql], capture_output=True, text=True)
        if r.returncode != 0:
            raise BenchError(f"psql failed on {sql!r}: {r.stderr.strip()}")
        return r.stdout.strip()

    def postmaster_pid(self) -> int | None:
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                return int(f.readline())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        r = self._run(f"{self.bin}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "30", "stop", check=False)
        pid = self.postmaster_pid()
        if r.returncode != 0 and pid:
            kill_tree(pid, grace=5)


# ---------------------------------------------------------------- the server

class Server:
    """The opencourse binary, copied with its resource bundle into the temporary folder first (a build
    running meanwhile may relink .build/release/opencourse; the benchmark keeps the binary it started)."""

    def __init__(self, binary: str, workdir: str):
        self.source = os.path.abspath(binary)
        self.dir = os.path.join(workdir, "server")
        os.makedirs(self.dir)
        self.binary = os.path.join(self.dir, "opencourse")
        shutil.copy2(self.source, self.binary)
        bundle = os.path.join(os.path.dirname(self.source), RESOURCE_BUNDLE)
        if os.path.isdir(bundle):
            shutil.copytree(bundle, os.path.join(self.dir, RESOURCE_BUNDLE))
        self.log = os.path.join(self.dir, "server.log")
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.seed: dict = {}

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, env: dict, timeout: float) -> float:
        """Starts `opencourse serve` (which applies the migrations) and waits for GET /health."""
        t0 = time.time()
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([self.binary, "serve"], env=env, cwd=self.dir, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"the server exited with status {self.proc.returncode} before GET /health "
                                 f"answered.\n--- last 40 lines of {self.log} ---\n{tail(self.log)}")
            try:
                status, _ = http_call(self.port, "GET", "/health", timeout=2)
                if status == 200:
                    return time.time() - t0
            except OSError:
                pass
            if time.time() - t0 > timeout:
                raise BenchError(f"the server did not answer GET /health with 200 within {timeout:.0f} s."
                                 f"\n--- last 40 lines of {self.log} ---\n{tail(self.log)}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            kill_tree(self.proc.pid)
        if self.proc:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def alive(self) -> bool:
        return bool(self.proc) and self.proc.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            raise BenchError(f"the server is no longer running (exit status {self.proc.returncode}).\n"
                             f"--- last 40 lines of {self.log} ---\n{tail(self.log)}")


# ---------------------------------------------------------------- HTTP client for seeding and checks

_local = threading.local()


def http_call(port: int, method: str, path: str, body=None, token: str | None = None, timeout: float = 60):
    """One request on a per-thread keep-alive connection; returns (status, parsed JSON or None)."""
    conns = _local.__dict__.setdefault("conns", {})
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    elif method == "POST":
        headers["Content-Length"] = "0"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    for attempt in (1, 2):
        conn = conns.get(port)
        if conn is None:
            conn = conns[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
            break
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as err:
            conn.close()  # a keep-alive connection the server had closed: retry once on a new one
            conns.pop(port, None)
            if attempt == 2:
                raise OSError(str(err)) from err
        except OSError:
            conn.close()
            conns.pop(port, None)
            raise
    try:
        return resp.status, json.loads(raw) if raw else None
    except ValueError:
        return resp.status, raw.decode(errors="replace")


def expect(what: str, status: int, want, got_body, extra=None) -> None:
    ok = status in want if isinstance(want, tuple) else status == want
    if not ok or (extra is not None and not extra):
        shown = got_body[:600] if isinstance(got_body, str) else json.dumps(got_body)[:600]
        raise BenchError(f"{what} answered {status} (expected {want}): {shown}")


def plan(args) -> dict:
    """The seed data, from a fixed random seed (the same as compare.py's)."""
    rng = random.Random(20240601)
    words = ("swift postgres rest api design testing concurrency databases security cloud data web mobile "
             "systems algorithms networks compilers linux devops observability performance").split()
    instructors = [{"email": f"instructor{i:03d}@bench.example.com", "password": f"Instructor-pass-{i:03d}",
                    "name": f"Instructor {i}", "role": "instructor"} for i in range(args.instructors)]
    students = [{"email": f"student{i:04d}@bench.example.com", "password": f"Student-pass-{i:04d}",
                 "name": f"Student {i}", "role": "student"} for i in range(args.students)]
    courses = []
    for k in range(args.courses):
        topic = " ".join(rng.sample(words, 2)).title()
        courses.append({"owner": k % len(instructors), "body": {
            "title": f"Course {k:05d}: {topic}",
            "description": f"{topic} from first principles. " + " ".join(rng.choices(words, k=30)) + "."}})
    per = min(args.enrollments_per_student, args.courses)
    enrollments = [(s, c) for s in range(len(students)) for c in rng.sample(range(args.courses), per)]
    return {"instructors": instructors, "students": students, "courses": courses, "enrollments": enrollments}


def seed(server: Server, data: dict, concurrency: int) -> dict:
    """Creates the plan's users, courses and enrollments through the API; returns ids and tokens."""
    port = server.port

    def register(u):
        status, body = http_call(port, "POST", "/api/v1/auth/register", u)
        expect(f"POST /api/v1/auth/register {u['email']}", status, 201, body,
               isinstance(body, dict) and body.get("accessToken") and body.get("user", {}).get("role") == u["role"])
        return {"id": body["user"]["id"], "token": body["accessToken"], "email": u["email"], "password": u["password"]}

    def create_course(c):
        token = instructors[c["owner"]]["token"]
        status, body = http_call(port, "POST", "/api/v1/courses", c["body"], token)
        expect("POST /api/v1/courses", status, 201, body, isinstance(body, dict) and body.get("id"))
        return body["id"]

    def enroll(pair):
        s, c = pair
        status, body = http_call(port, "POST", f"/api/v1/courses/{course_ids[c]}/enroll", None, students[s]["token"])
        expect("POST /api/v1/courses/{id}/enroll", status, 201, body)

    pool = ThreadPoolExecutor(concurrency)
    try:
        instructors = list(pool.map(register, data["instructors"]))
        students = list(pool.map(register, data["students"]))
        course_ids = list(pool.map(create_course, data["courses"]))
        list(pool.map(enroll, data["enrollments"]))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # on an error, drop what has not started
    return {"instructors": instructors, "students": students, "courses": course_ids}


def smoke(server: Server) -> None:
    """One request per scenario, checked for status and JSON shape, before anything is measured."""
    port, s, i = server.port, server.seed["students"][0], server.seed["instructors"][0]
    course = server.seed["courses"][0]
    st, b = http_call(port, "GET", "/health")
    expect("GET /health", st, 200, b, b == {"status": "ok"})
    st, b = http_call(port, "GET", "/api/v1/courses?limit=20")
    expect("GET /api/v1/courses?limit=20", st, 200, b,
           isinstance(b, dict) and len(b.get("data", [])) == 20 and b.get("nextCursor"))
    st, b = http_call(port, "GET", f"/api/v1/courses/{course}")
    expect("GET /api/v1/courses/{id}", st, 200, b, isinstance(b, dict) and b.get("id") == course)
    st, b = http_call(port, "GET", "/api/v1/users/me", token=s["token"])
    expect("GET /api/v1/users/me", st, 200, b, isinstance(b, dict) and b.get("id") == s["id"])
    st, b = http_call(port, "POST", "/api/v1/courses", {"title": "Smoke test course"}, i["token"])
    expect("POST /api/v1/courses", st, 201, b, isinstance(b, dict) and b.get("title") == "Smoke test course")
    st, b = http_call(port, "POST", f"/api/v1/courses/{course}/enroll", token=s["token"])
    expect("POST /api/v1/courses/{id}/enroll", st, (200, 201), b,
           isinstance(b, dict) and b.get("courseId") == course)
    st, b = http_call(port, "POST", "/api/v1/auth/login", {"email": s["email"], "password": s["password"]})
    expect("POST /api/v1/auth/login", st, 200, b, isinstance(b, dict) and b.get("accessToken"))


# ---------------------------------------------------------------- wrk scripts

LUA_COMMON = r"""
-- generated by bench/bench.py
local function lines(path)
  local t = {}
  for l in io.lines(path) do t[#t + 1] = l end
  return t
end
local threads, nthreads = {}, 0
function setup(thread)
  thread:set("tid", nthreads)  -- becomes a global in the thread's own Lua state
  nthreads = nthreads + 1
  threads[nthreads] = thread
end
function init(args)
  math.randomseed(4242 + tid)    -- a fixed request sequence per wrk thread
  bad, seq = 0, 0
end
function response(status, headers, body)
  if status < 200 or status > 299 then bad = bad + 1 end
end
function done(summary, latency, requests)
  local non2xx = 0
  for _, t in ipairs(threads) do non2xx = non2xx + (t:get("bad") or 0) end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "non2xx": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    non2xx, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""

LUA_REQUEST = {
    "health": None,  # static request: the URL path is enough
    "list": None,
    "get": r"""
local ids = lines("{dir}/courses.txt")
function request()
  return wrk.format("GET", "/api/v1/courses/" .. ids[math.random(#ids)])
end""",
    "me": r"""
local tokens = lines("{dir}/student_tokens.txt")
function request()
  return wrk.format("GET", "/api/v1/users/me", {{["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]}})
end""",
    "create": r"""
local tokens = lines("{dir}/instructor_tokens.txt")
function request()
  seq = seq + 1
  local body = '{{"title": "Load course ' .. tid .. '-' .. seq .. '", "description": "Created by the create scenario."}}'
  return wrk.format("POST", "/api/v1/courses", {{["Authorization"] = "Bearer " .. tokens[math.random(#tokens)],
    ["Content-Type"] = "application/json"}}, body)
end""",
    "enroll": r"""
local ids = lines("{dir}/courses.txt")
local tokens = lines("{dir}/student_tokens.txt")
function request()
  local path = "/api/v1/courses/" .. ids[math.random(#ids)] .. "/enroll"
  return wrk.format("POST", path, {{["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]}}, "")
end""",
    "login": r"""
local creds = lines("{dir}/student_logins.txt")
function request()
  local email, password = creds[math.random(#creds)]:match("^(%S+)\t(%S+)$")
  return wrk.format("POST", "/api/v1/auth/login", {{["Content-Type"] = "application/json"}},
    '{{"email": "' .. email .. '", "password": "' .. password .. '"}}')
end""",
}
SCENARIO_PATH = {"health": "/health", "list": "/api/v1/courses?limit=20"}


def write_scripts(server: Server, workdir: str) -> dict[str, str]:
    d, s = os.path.join(workdir, "wrk"), server.seed
    os.makedirs(d)

    def save(name, rows):
        with open(os.path.join(d, name), "w") as f:
            f.write("\n".join(rows) + "\n")

    save("courses.txt", s["courses"])
    save("student_tokens.txt", [u["token"] for u in s["students"]])
    save("instructor_tokens.txt", [u["token"] for u in s["instructors"]])
    save("student_logins.txt", [f"{u['email']}\t{u['password']}" for u in s["students"]])
    scripts = {}
    for name, body in LUA_REQUEST.items():
        path = os.path.join(d, f"{name}.lua")
        with open(path, "w") as f:
            f.write(LUA_COMMON + (body.format(dir=d) if body else "") + "\n")
        scripts[name] = path
    return scripts


# ---------------------------------------------------------------- one measured run

_current_wrk: list[subprocess.Popen] = []


def wrk_connections(args, scenario: str) -> int:
    return args.login_connections if scenario == "login" else args.connections


def run_wrk(wrk: str, args, scenario: str, script: str, url: str, seconds: int) -> tuple[dict, str]:
    cmd = [wrk, f"-t{args.threads}", f"-c{wrk_connections(args, scenario)}", f"-d{seconds}s",
           f"--timeout={args.timeout}s", "--latency", "-s", script, url]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _current_wrk.append(p)
    try:
        out, _ = p.communicate(timeout=seconds + args.timeout + 60)
    except BaseException:  # interrupted (a signal arrives as KeyboardInterrupt) or hung: stop wrk too
        p.kill()
        p.wait()
        raise
    finally:
        _current_wrk.remove(p)
    m = re.search(r"^BENCHJSON (.*)$", out, re.M)
    if p.returncode != 0 or not m:
        raise BenchError(f"wrk failed ({p.returncode}): {' '.join(cmd)}\n{out[-2000:]}")
    return json.loads(m.group(1)), out


class Sampler(threading.Thread):
    """Samples the RSS of a process tree every `period` seconds; keeps the peak."""

    def __init__(self, root: int, period: float = 0.1):
        super().__init__(daemon=True)
        self.root, self.period, self.peak = root, period, 0
        self.stop_event = threading.Event()

    def run(self):
        while not self.stop_event.is_set():
            self.peak = max(self.peak, rss_bytes(tree(self.root, proc_table())))
            self.stop_event.wait(self.period)

    def finish(self) -> int:
        self.stop_event.set()
        self.join()
        return self.peak


def measure(wrk: str, args, server: Server, pg: Postgres, scenario: str, script: str) -> dict:
    server.check_alive()
    url = server.base + SCENARIO_PATH.get(scenario, "/")
    pg.sql("CHECKPOINT")  # flush the previous run's writes now rather than during this one
    warm, _ = run_wrk(wrk, args, scenario, script, url, args.warmup) if args.warmup > 0 else ({}, "")
    server.check_alive()

    root, pg_root = server.proc.pid, pg.postmaster_pid()
    hwm_ok = reset_hwm(root)
    t0, wall0 = proc_table(), time.monotonic()
    before = (cpu_ticks(root, t0), cpu_ticks(pg_root, t0), system_busy_ticks(),
              resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF))
    sampler = Sampler(root, args.sample_period)
    sampler.start()
    try:
        res, raw = run_wrk(wrk, args, scenario, script, url, args.seconds)
    finally:
        peak = sampler.finish()
    t1, wall = proc_table(), time.monotonic() - wall0
    after = (cpu_ticks(root, t1), cpu_ticks(pg_root, t1), system_busy_ticks(),
             resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF))
    hwm = vm_hwm_bytes(root) if hwm_ok else None
    server.check_alive()

    secs = res["duration_us"] / 1e6
    server_cpu = cpu_delta(before[0], after[0]) / CLK_TCK
    pg_cpu = cpu_delta(before[1], after[1]) / CLK_TCK
    wrk_cpu = (after[3].ru_utime + after[3].ru_stime) - (before[3].ru_utime + before[3].ru_stime)
    self_cpu = (after[4].ru_utime + after[4].ru_stime) - (before[4].ru_utime + before[4].ru_stime)
    busy = (after[2] - before[2]) / CLK_TCK
    socket_errors = res["connect"] + res["read"] + res["write"] + res["timeout"]
    warm_errors = (warm.get("non2xx", 0) + warm.get("connect", 0) + warm.get("read", 0) + warm.get("write", 0)
                   + warm.get("timeout", 0)) if warm else 0
    return {
        "scenario": scenario, "url": url,
        "requests": res["requests"], "seconds": secs, "rps": res["requests"] / secs if secs else 0.0,
        "p50_ms": res["p50_us"] / 1000, "p90_ms": res["p90_us"] / 1000, "p99_ms": res["p99_us"] / 1000,
        "max_ms": res["max_us"] / 1000, "mean_ms": res["mean_us"] / 1000,
        "non2xx": res["non2xx"], "socket_errors": socket_errors, "errors": res["non2xx"] + socket_errors,
        # a run is flagged when any response was not 2xx, a socket failed, or nothing completed at all
        "flagged": bool(res["non2xx"] or socket_errors or res["requests"] == 0),
        "errors_detail": {k: res[k] for k in ("connect", "read", "write", "timeout", "status")},
        "warmup_errors": warm_errors,
        # sampled sum over the server's process tree (the method of compare.py) ...
        "peak_rss_mib": peak / 2**20,
        # ... and the kernel's exact peak of the server process during the measured run (VmHWM)
        "vm_hwm_mib": hwm / 2**20 if hwm is not None else None,
        # average cores used between the two snapshots around the measured wrk run
        "server_cpu_cores": server_cpu / wall,
        "postgres_cpu_cores": pg_cpu / wall,
        "wrk_cpu_cores": wrk_cpu / wall,
        # CPU used by anything else on the machine during the run: a sign of a noisy measurement
        "foreign_cpu_cores": max(0.0, busy - server_cpu - pg_cpu - wrk_cpu - self_cpu) / wall,
        "wrk_output": raw,
    }


# ---------------------------------------------------------------- report

def git_info() -> dict:
    def git(*a):
        r = subprocess.run(["git", "-C", REPO, *a], capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else ""
    commit = git("rev-parse", "--short=12", "HEAD")
    if not commit:
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def machine_info(pg: Postgres, wrk: str) -> dict:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), model)
    except OSError:
        pass
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    wrk_version = subprocess.run([wrk, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    wrk_version = wrk_version.split(" Copyright")[0].strip()
    return {"nproc": os.cpu_count(), "cpu_model": model, "memory_gib": round(mem_kib / 2**20, 1),
            "kernel": platform.release(), "python": platform.python_version(), "wrk": wrk_version,
            "postgres": pg.sql("SHOW server_version"), "shared_buffers": pg.sql("SHOW shared_buffers"),
            "fsync": pg.sql("SHOW fsync"), "load_average_at_start": os.getloadavg()}


def median(values):
    return statistics.median(values) if values else 0.0


def summarize(runs: list[dict], scenarios: list[str]) -> dict:
    out = {}
    for sc in scenarios:
        rs = [r for r in runs if r["scenario"] == sc]
        if not rs:
            continue
        hwm = [r["vm_hwm_mib"] for r in rs if r["vm_hwm_mib"] is not None]
        out[sc] = {
            "rounds": len(rs),
            **{k: median([r[k] for r in rs]) for k in ("rps", "p50_ms", "p90_ms", "p99_ms", "peak_rss_mib",
                                                      "server_cpu_cores", "postgres_cpu_cores",
                                                      "foreign_cpu_cores")},
            "vm_hwm_mib": median(hwm) if hwm else None,
            "rps_per_round": [round(r["rps"], 1) for r in rs],
            "non2xx": sum(r["non2xx"] for r in rs), "socket_errors": sum(r["socket_errors"] for r in rs),
            "errors": sum(r["errors"] for r in rs),
            "warmup_errors": sum(r["warmup_errors"] for r in rs),
            "flagged": any(r["flagged"] for r in rs),
        }
    return out


def render(report: dict) -> str:
    a, m, g, srv = report["params"], report["machine"], report["git"], report["server"]
    rev = f"{g['commit']}{' + uncommitted changes' if g['dirty'] else ''}" if g["commit"] else "unknown"
    L = [f"# opencourse benchmark, {report['started']}", "",
         "| scenario | req/s | p50 ms | p99 ms | errors | peak RSS MiB |",
         "|---|---:|---:|---:|---:|---:|"]
    for sc, s in report["summary"].items():
        err = (f"**{s['errors']}** ⚠ ({s['non2xx']} non-2xx, {s['socket_errors']} socket)"
               if s["errors"] else ("0" if s["requests_total"] else "**0 requests** ⚠"))
        L.append(f"| {sc} | {s['rps']:,.0f} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {err} | {s['peak_rss_mib']:.0f} |")
    L.append("")
    flagged = [r for r in report["runs"] if r["flagged"]]
    noisy = [r for r in report["runs"] if r["foreign_cpu_cores"] > a["noise_threshold"]]
    warm = sum(r["warmup_errors"] for r in report["runs"])
    if flagged:
        L += [f"**⚠ Errors:** {len(flagged)} of {len(report['runs'])} measured runs had non-2xx responses, "
              "socket errors or no completed request (details per run in the JSON file).", ""]
    else:
        L += ["**Errors: none.** Every measured response was 2xx and no run had a socket error.", ""]
    if warm:
        L += [f"Warm-up runs had {warm} errors (not counted above).", ""]
    if noisy:
        L += [f"**Noise:** {len(noisy)} of {len(report['runs'])} runs saw more than {a['noise_threshold']} cores of "
              "CPU used by other processes on the machine; treat those numbers with care.", ""]
    if srv["log_lines"]:
        L += [f"The server wrote {srv['log_lines']} log lines at LOG_LEVEL={a['env'].get('LOG_LEVEL')} "
              "(last ones in the JSON file).", ""]
    L += [f"- Machine: {m['nproc']} cores ({m['cpu_model']}), {m['memory_gib']} GiB RAM, Linux {m['kernel']}; "
          f"load average at start {', '.join(f'{x:.2f}' for x in m['load_average_at_start'])}. wrk, PostgreSQL "
          "and the server share these cores: compare numbers from the same machine only.",
          f"- PostgreSQL {m['postgres']} (throwaway cluster, fsync {m['fsync']}, shared_buffers "
          f"{m['shared_buffers']}), `CHECKPOINT` before every run.",
          f"- opencourse {rev}, binary `{srv['binary']}` (built {srv['binary_mtime']}), "
          f"ready after {srv['startup_s']:.1f} s; DB_POOL_SIZE={a['env'].get('DB_POOL_SIZE')}, "
          f"BCRYPT_COST={a['bcrypt_cost']}.",
          f"- Seeded through the API in {srv['seed_s']:.1f} s: {a['instructors']} instructors, {a['students']} students, "
          f"{a['courses']} courses, {a['enrollments_per_student']} enrollments per student (fixed random seed).",
          f"- wrk ({m['wrk']}): `{a['wrk_command']}`, `-c{a['login_connections']}` for login, after a "
          f"{a['warmup']} s warm-up; {a['rounds']} round(s) per scenario, medians over rounds, errors summed.",
          f"- errors = non-2xx responses + socket errors. Peak RSS: the server's resident set, sampled every "
          f"{a['sample_period']} s during the measured run.", ""]
    return "\n".join(L)


# ---------------------------------------------------------------- main

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="scenarios:\n" + "\n".join(f"  {k:8s}{v}" for k, v in SCENARIOS.items()))
    p.add_argument("--binary", default=os.path.join(REPO, ".build", "release", "opencourse"),
                   help="the opencourse executable (default .build/release/opencourse); scripts/bench.sh skips "
                        "its build when given this")
    p.add_argument("--seconds", type=int, default=10, help="measured wrk duration per run (default 10)")
    p.add_argument("--warmup", type=int, default=3, help="warm-up wrk duration before every run (default 3)")
    p.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    p.add_argument("--login-connections", type=int, default=16,
                   help="wrk connections for the login scenario, whose requests each take a hash's time (default 16)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    p.add_argument("--timeout", type=int, default=10, help="wrk request timeout in seconds (default 10)")
    p.add_argument("--rounds", type=int, default=3, help="measured runs per scenario, reported as the median (default 3)")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma-separated, from: {','.join(SCENARIOS)}")
    p.add_argument("--bcrypt-cost", type=int, default=8, help="BCRYPT_COST (default 8; the service's default is 12)")
    p.add_argument("--db-pool-size", type=int, default=10,
                   help="DB_POOL_SIZE (default 10, the service's: on 2 cores 8 to 12 serve as fast as 20 in ~20 MiB less)")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment for the server, applied last (repeatable)")
    p.add_argument("--instructors", type=int, default=20)
    p.add_argument("--students", type=int, default=500)
    p.add_argument("--courses", type=int, default=5000)
    p.add_argument("--enrollments-per-student", type=int, default=10)
    p.add_argument("--seed-concurrency", type=int, default=8, help="parallel requests while seeding (default 8)")
    p.add_argument("--pg-bin", help="folder with initdb and pg_ctl (default: newest /usr/lib/postgresql/*/bin)")
    p.add_argument("--shared-buffers", default="256MB")
    p.add_argument("--sample-period", type=float, default=0.1, help="RSS sampling period in seconds (default 0.1)")
    p.add_argument("--startup-timeout", type=float, default=120, help="seconds to wait for GET /health (default 120)")
    p.add_argument("--noise-threshold", type=float, default=0.25,
                   help="flag runs where other processes used more CPU cores than this (default 0.25)")
    p.add_argument("--out-dir", default=os.path.join(REPO, "bench-results"),
                   help="where the markdown and JSON reports go (default bench-results/ in the repository)")
    p.add_argument("--keep", action="store_true",
                   help="keep the temporary folder (server and PostgreSQL logs, wrk scripts, data)")
    a = p.parse_args(argv)
    a.scenario_list = [s.strip() for s in a.scenarios.split(",") if s.strip()]
    unknown = [s for s in a.scenario_list if s not in SCENARIOS]
    if unknown or not a.scenario_list:
        p.error(f"unknown or no scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    if not 4 <= a.bcrypt_cost <= 31:
        p.error("--bcrypt-cost must be 4..31")
    if min(a.seconds, a.rounds, a.threads, a.timeout, a.db_pool_size, a.seed_concurrency) < 1 or a.warmup < 0:
        p.error("--seconds, --rounds, --threads, --timeout, --db-pool-size and --seed-concurrency must be at "
                "least 1, --warmup at least 0")
    if min(a.connections, a.login_connections) < a.threads:
        p.error("wrk needs at least as many connections as threads")
    if min(a.instructors, a.students) < 1 or a.courses < 20 or a.enrollments_per_student < 0:
        p.error("seed at least 1 instructor, 1 student and 20 courses (the list scenario reads a page of 20)")
    if a.sample_period <= 0:
        p.error("--sample-period must be positive")
    # The benchmark drives everything from one address, so the per-client limits are lifted;
    # no drain on shutdown, so clean-up is quick; symbols bound at start-up, as the container image
    # does (README, "Memory"). --env overrides any of these.
    a.server_env = {"LOG_LEVEL": "warning", "DB_POOL_SIZE": str(a.db_pool_size), "RATE_LIMIT_RPS": "0",
                    "REGISTER_MAX_PER_WINDOW": "1000000", "LOGIN_MAX_FAILURES": "1000000",
                    "SHUTDOWN_DRAIN_SECONDS": "0", "LD_BIND_NOW": "1"}
    for kv in a.env:
        k, sep, v = kv.partition("=")
        if not sep or not k:
            p.error(f"--env needs KEY=VALUE, got {kv!r}")
        a.server_env[k] = v
    return a


def main(argv=None) -> int:
    args = parse_args(argv)
    started = dt.datetime.now(dt.timezone.utc)
    if not (os.path.isfile(args.binary) and os.access(args.binary, os.X_OK)):
        print(f"error: {args.binary} is not an executable; build it with `swift build -c release` "
              "or run scripts/bench.sh", file=sys.stderr)
        return 2

    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    workdir = tempfile.mkdtemp(prefix="opencourse-bench-")
    pg: Postgres | None = None
    server: Server | None = None
    try:
        wrk = ensure_wrk()
        pg_bin = find_pg_bin(args.pg_bin)
        pg = Postgres(pg_bin, workdir, args.shared_buffers)
        log(f"PostgreSQL from {pg_bin}, temporary folder {workdir}")
        pg.start()
        log(f"PostgreSQL listening on 127.0.0.1:{pg.port}")
        machine = machine_info(pg, wrk)
        server = Server(args.binary, workdir)
        env = dict(os.environ, PORT=str(server.port), HOST="127.0.0.1", DATABASE_URL=pg.url(),
                   JWT_SECRET=secrets.token_urlsafe(48), BCRYPT_COST=str(args.bcrypt_cost),
                   JWT_TTL_SECONDS=str(7 * 86400))
        env.update(args.server_env)
        log(f"starting {args.binary} serve on 127.0.0.1:{server.port}")
        startup_s = server.start(env, args.startup_timeout)
        log(f"server up after {startup_s:.1f} s; seeding through the API ...")
        t0 = time.time()
        server.seed = seed(server, plan(args), args.seed_concurrency)
        seed_s = time.time() - t0
        smoke(server)
        pg.sql("VACUUM ANALYZE", db=pg.DB)
        scripts = write_scripts(server, workdir)
        idle_rss = rss_bytes(tree(server.proc.pid, proc_table())) / 2**20
        log(f"seeded in {seed_s:.1f} s; smoke checks passed; server RSS {idle_rss:.0f} MiB")

        wrk_cmd = (f"wrk -t{args.threads} -c{args.connections} -d{args.seconds}s --timeout={args.timeout}s "
                   "--latency -s SCENARIO.lua URL")
        params = {**{k: getattr(args, k) for k in ("seconds", "warmup", "connections", "login_connections",
                                                   "threads", "timeout", "rounds", "bcrypt_cost", "instructors",
                                                   "students", "courses", "enrollments_per_student",
                                                   "noise_threshold", "sample_period")},
                  "scenarios": args.scenario_list, "wrk_command": wrk_cmd, "env": args.server_env}
        runs = []
        for sc in args.scenario_list:
            for rnd in range(1, args.rounds + 1):
                r = measure(wrk, args, server, pg, sc, scripts[sc])
                r["round"] = rnd
                runs.append(r)
                flag = "  ⚠ FLAGGED" if r["flagged"] else ""
                log(f"{sc:7s} round {rnd}  {r['rps']:10,.0f} req/s  p50 {r['p50_ms']:7.2f} ms  "
                    f"p99 {r['p99_ms']:8.2f} ms  non-2xx {r['non2xx']}  socket errors {r['socket_errors']}  "
                    f"RSS {r['peak_rss_mib']:.0f} MiB  other CPU {r['foreign_cpu_cores']:.2f}{flag}")

        summary = summarize(runs, args.scenario_list)
        for sc, s in summary.items():
            s["requests_total"] = sum(r["requests"] for r in runs if r["scenario"] == sc)
        with open(server.log, errors="replace") as f:
            log_lines = f.read().splitlines()
        st = os.stat(args.binary)
        report = {
            "started": started.strftime("%Y-%m-%d %H:%M UTC"), "machine": machine, "git": git_info(),
            "params": params,
            "server": {"binary": os.path.relpath(os.path.abspath(args.binary), REPO)
                       if os.path.abspath(args.binary).startswith(REPO + os.sep) else os.path.abspath(args.binary),
                       "binary_mtime": dt.datetime.fromtimestamp(st.st_mtime, dt.timezone.utc)
                       .strftime("%Y-%m-%d %H:%M UTC"),
                       "startup_s": startup_s, "seed_s": seed_s, "rss_after_seed_mib": idle_rss,
                       "vm_hwm_lifetime_mib": (vm_hwm_bytes(server.proc.pid) or 0) / 2**20,
                       "log_lines": len(log_lines), "log_tail": log_lines[-20:]},
            "summary": summary, "runs": runs,
        }
        md = render(report)
        os.makedirs(args.out_dir, exist_ok=True)
        stem = os.path.join(args.out_dir, f"bench-{started:%Y%m%d-%H%M%S}")
        with open(stem + ".md", "w") as f:
            f.write(md)
        with open(stem + ".json", "w") as f:
            json.dump(report, f, indent=2)
        print("\n" + md, flush=True)
        log(f"wrote {stem}.md and {stem}.json")
        return 3 if any(r["flagged"] for r in runs) else 0
    except BenchError as err:
        print(f"\nerror: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # let the clean-up finish
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        for p in list(_current_wrk):
            p.kill()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if server:
            server.stop()
        if pg:
            pg.stop()
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
