#!/usr/bin/env python3
"""Helper for scripts/scale-out-test.sh (Python 3.11, standard library only).

Subcommands:
  ports N                      print N distinct free TCP ports on 127.0.0.1, one a line
  wait-http URL                wait until GET URL answers the expected status (default 200)
  server-state SOCKET BACKEND SERVER
                               print HAProxy's status of one server and its last check's result
                               ("UP L7OK", "DOWN L7STS", ...), asked over the stats socket
  retries SOCKET BACKEND       print how many requests HAProxy retried and redispatched
  load --url URL ...           the steady read/write load through HAProxy, then the check that
                               every acknowledged write is still readable
  token-check --issuer URL --verifier URL
                               a token issued by one instance is accepted by the other
"""
from __future__ import annotations

import argparse
import csv
import http.client
import io
import json
import os
import random
import select
import socket
import sys
import threading
import time
import urllib.parse
import uuid

API = "/api/v1"


def stamp() -> str:
    """Wall-clock time with milliseconds, the same format as the shell script's log lines."""
    now = time.time()
    return time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"


def say(message: str) -> None:
    print(f"[{stamp()}] driver: {message}", file=sys.stderr, flush=True)


# --- small commands --------------------------------------------------------------------------

def cmd_ports(args: argparse.Namespace) -> int:
    # Bind all sockets before closing any, so the ports are distinct.
    sockets = []
    for _ in range(args.count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    for s in sockets:
        print(s.getsockname()[1])
        s.close()
    return 0


def cmd_wait_http(args: argparse.Namespace) -> int:
    url = urllib.parse.urlsplit(args.url)
    deadline = time.monotonic() + args.timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=2)
        try:
            conn.request("GET", url.path or "/")
            response = conn.getresponse()
            response.read()
            if response.status == args.status:
                return 0
            last = f"status {response.status}"
        except (OSError, http.client.HTTPException) as error:
            last = repr(error)
        finally:
            conn.close()
        time.sleep(0.1)
    say(f"{args.url} did not answer {args.status} within {args.timeout}s (last: {last})")
    return 1


def haproxy_command(socket_path: str, command: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        s.connect(socket_path)
        s.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := s.recv(65536):  # HAProxy closes the socket after one command
            chunks.append(chunk)
    return b"".join(chunks).decode()


def stat_row(socket_path: str, backend: str, server: str) -> dict[str, str] | None:
    """One row of HAProxy's "show stat" CSV (server is "BACKEND" for the backend's totals)."""
    text = haproxy_command(socket_path, "show stat")
    # The CSV header starts with "# pxname,svname,...".
    for row in csv.DictReader(io.StringIO(text.lstrip("# "))):
        if row.get("pxname") == backend and row.get("svname") == server:
            return row
    return None


def cmd_server_state(args: argparse.Namespace) -> int:
    # Prints the status and the last check's result, e.g. "UP L7OK", "DOWN L7STS" (the check got
    # an unexpected status: /ready answered 503) or "DOWN L4CON" (connection refused).
    try:
        row = stat_row(args.socket, args.backend, args.server)
    except OSError as error:
        print(f"NOSOCKET {error.__class__.__name__}")
        return 0
    if row is None:
        print("ABSENT -")
    else:
        print(row.get("status") or "?", (row.get("check_status") or "-").lstrip("* "))
    return 0


def cmd_retries(args: argparse.Namespace) -> int:
    # The backend's totals: requests HAProxy retried, and requests it redispatched to another server.
    try:
        row = stat_row(args.socket, args.backend, "BACKEND") or {}
    except OSError:
        print("? ?")
        return 0
    print(row.get("wretr") or 0, row.get("wredis") or 0)
    return 0


# --- HTTP client -----------------------------------------------------------------------------

class Failure(Exception):
    """A request that failed: connection error, 5xx or an unexpected status."""


class Client:
    """One keep-alive HTTP/1.1 connection, reopened after an error or a `Connection: close`.

    It never retries: every error is reported to the caller, which counts it.
    """

    def __init__(self, base_url: str, timeout: float = 15.0) -> None:
        url = urllib.parse.urlsplit(base_url)
        self.host, self.port, self.timeout = url.hostname, url.port, timeout
        self.conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def connection(self) -> http.client.HTTPConnection:
        """The keep-alive connection, opened when needed, and reopened when the server closed it
        while it was idle (its idle timeout), as browsers and urllib3 check before reusing one:
        a request written to a connection the server has already closed fails unanswered
        although the server never received it."""
        if self.conn is not None and self.conn.sock is not None:
            readable, _, _ = select.select([self.conn.sock], [], [], 0)
            if readable:  # end of stream, or bytes nobody asked for: not reusable
                self.close()
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self.conn

    def send_request(self, method: str, path: str, body: dict | None, token: str | None) -> None:
        """Sends one JSON request on the keep-alive connection."""
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        self.connection().request(method, path, body=data, headers=headers)

    def call(self, method: str, path: str, expect: tuple[int, ...], body: dict | None = None,
             token: str | None = None) -> tuple[int, dict | None]:
        try:
            self.send_request(method, path, body, token)
            response = self.conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as error:
            self.close()
            raise Failure(f"{method} {path}: {error.__class__.__name__}: {error}") from None
        if response.will_close:
            self.close()
        if response.status not in expect:
            snippet = raw[:200].decode(errors="replace")
            raise Failure(f"{method} {path}: status {response.status} (expected "
                          f"{'/'.join(map(str, expect))}) {snippet}")
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            raise Failure(f"{method} {path}: status {response.status} with a body that is not JSON") from None
        return response.status, payload


def register(client: Client, role: str, tag: str) -> tuple[str, str, str]:
    """Registers a fresh account; returns (email, password, accessToken)."""
    email = f"{role}-{tag}-{uuid.uuid4().hex[:10]}@example.com"
    password = "scale-out password"
    _, payload = client.call("POST", f"{API}/auth/register", (201,),
                             {"email": email, "password": password, "role": role})
    return email, password, payload["accessToken"]


# --- load ------------------------------------------------------------------------------------

class Load:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.total = 0
        self.by_operation: dict[str, int] = {}
        self.failures: list[str] = []
        self.failure_count = 0
        self.max_latency = 0.0
        self.courses: list[str] = []          # every course whose creation was acknowledged (201)
        self.enrolled: set[str] = set()       # course ids of acknowledged enrollments (201 or 200)
        self.instructor_token = ""
        self.student_token = ""

    def record(self, operation: str, started: float, failure: str | None) -> None:
        latency = time.monotonic() - started
        with self.lock:
            self.total += 1
            self.by_operation[operation] = self.by_operation.get(operation, 0) + 1
            self.max_latency = max(self.max_latency, latency)
            if failure is not None:
                self.failure_count += 1
                if len(self.failures) < 50:
                    self.failures.append(f"{stamp()} {failure}")
                if self.failure_count <= 20:  # print the first ones as they happen, for the timeline
                    say(f"FAILED {failure} ({latency:.2f}s)")

    def setup(self) -> None:
        client = Client(self.args.url)
        tag = uuid.uuid4().hex[:6]
        _, _, self.instructor_token = register(client, "instructor", tag)
        _, _, self.student_token = register(client, "student", tag)
        for n in range(3):
            _, course = client.call("POST", f"{API}/courses", (201,), {"title": f"Seed course {n}"},
                                    self.instructor_token)
            self.courses.append(course["id"])
        client.close()

    def one_request(self, client: Client, rng: random.Random) -> None:
        roll = rng.random()
        with self.lock:
            course_id = rng.choice(self.courses)
        if roll < 0.15:
            operation = "create-course"
            call = lambda: client.call("POST", f"{API}/courses", (201,),
                                       {"title": f"Course {uuid.uuid4().hex[:8]}",
                                        "description": "created under load"}, self.instructor_token)
        elif roll < 0.25:
            operation = "enroll"
            call = lambda: client.call("POST", f"{API}/courses/{course_id}/enroll", (201, 200),
                                       None, self.student_token)
        elif roll < 0.55:
            operation = "list-courses"
            call = lambda: client.call("GET", f"{API}/courses?limit=20", (200,))
        elif roll < 0.80:
            operation = "get-course"
            call = lambda: client.call("GET", f"{API}/courses/{course_id}", (200,))
        else:
            operation = "me"
            call = lambda: client.call("GET", f"{API}/users/me", (200,), None, self.student_token)
        started = time.monotonic()
        try:
            status, payload = call()
        except Failure as failure:
            self.record(operation, started, str(failure))
            return
        problem = None
        if operation == "create-course":
            if not isinstance(payload, dict) or not payload.get("id"):
                problem = f"POST {API}/courses: 201 without an id"
            else:
                with self.lock:
                    self.courses.append(payload["id"])
        elif operation == "enroll":
            if not isinstance(payload, dict) or payload.get("courseId") != course_id:
                problem = f"POST {API}/courses/{course_id}/enroll: {status} without that courseId"
            else:
                with self.lock:
                    self.enrolled.add(course_id)
        self.record(operation, started, problem)

    def worker(self, seed: int) -> None:
        rng = random.Random(seed)
        client = Client(self.args.url)
        while not self.stop.is_set():
            self.one_request(client, rng)
            # A steady stream, not a flood: the point is continuity across restarts, and a
            # saturated 2-core machine would make the timings meaningless.
            time.sleep(self.args.pause)
        client.close()

    def verify(self) -> tuple[int, list[str]]:
        """Every acknowledged course is still readable, every acknowledged enrollment listed."""
        problems: list[str] = []
        client = Client(self.args.url)
        verified = 0
        for course_id in self.courses:
            try:
                _, course = client.call("GET", f"{API}/courses/{course_id}", (200,))
                if course.get("id") != course_id:
                    problems.append(f"GET course {course_id} answered id {course.get('id')}")
                else:
                    verified += 1
            except Failure as failure:
                problems.append(f"acknowledged course not readable: {failure}")
        listed: set[str] = set()
        cursor = None
        try:
            while True:
                query = "limit=100" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
                _, page = client.call("GET", f"{API}/users/me/enrollments?{query}", (200,), None,
                                      self.student_token)
                listed.update(item["courseId"] for item in page["data"])
                cursor = page.get("nextCursor")
                if not cursor:
                    break
        except Failure as failure:
            problems.append(f"listing the student's enrollments: {failure}")
        missing = self.enrolled - listed
        if missing:
            problems.append(f"{len(missing)} acknowledged enrollment(s) missing, e.g. {sorted(missing)[:3]}")
        else:
            verified += len(self.enrolled)
        client.close()
        return verified, problems


def cmd_load(args: argparse.Namespace) -> int:
    load = Load(args)
    try:
        load.setup()
    except Failure as failure:
        say(f"setup failed: {failure}")
        return 2
    threads = [threading.Thread(target=load.worker, args=(n,), daemon=True) for n in range(args.workers)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    with open(args.ready_file, "w") as ready:
        ready.write("ready\n")
    say(f"{args.workers} workers running through {args.url}")
    # Runs until the shell script creates the stop file (or a safety limit passes).
    while not os.path.exists(args.stop_file) and time.monotonic() - started < args.max_seconds:
        time.sleep(0.05)
    load.stop.set()
    for thread in threads:
        thread.join(timeout=30)
    elapsed = time.monotonic() - started
    verified, problems = load.verify()
    acknowledged = len(load.courses) + len(load.enrolled)
    for problem in problems:
        say(f"VERIFY {problem}")
    report = {
        "requests": load.total,
        "failures": load.failure_count,
        "byOperation": load.by_operation,
        "seconds": round(elapsed, 1),
        "maxLatency": round(load.max_latency, 3),
        "acknowledgedCourses": len(load.courses),
        "acknowledgedEnrollments": len(load.enrolled),
        "acknowledged": acknowledged,
        "verified": verified,
        "verifyProblems": problems,
        "firstFailures": load.failures,
    }
    with open(args.report, "w") as out:
        json.dump(report, out, indent=2)
    say(f"{load.total} requests in {elapsed:.1f}s ({load.total / elapsed:.0f}/s, max latency "
        f"{load.max_latency:.2f}s), {load.failure_count} failed; {verified}/{acknowledged} acknowledged "
        f"writes verified ({len(load.courses)} courses, {len(load.enrolled)} enrollments)")
    return 0 if load.failure_count == 0 and not problems and verified == acknowledged else 1


# --- token check -----------------------------------------------------------------------------

def cmd_token_check(args: argparse.Namespace) -> int:
    issuer, verifier = Client(args.issuer), Client(args.verifier)
    try:
        email, password, registered_token = register(issuer, "student", "token")
        _, login = issuer.call("POST", f"{API}/auth/login", (200,), {"email": email, "password": password})
        for kind, token in (("register", registered_token), ("login", login["accessToken"])):
            _, me = verifier.call("GET", f"{API}/users/me", (200,), None, token)
            if me.get("email") != email:
                raise Failure(f"/users/me on {args.verifier} answered {me.get('email')}, not {email}")
            say(f"token from {kind} on {args.issuer} accepted by {args.verifier}")
    except Failure as failure:
        say(f"token check failed: {failure}")
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ports")
    p.add_argument("count", type=int)
    p.set_defaults(run=cmd_ports)

    p = sub.add_parser("wait-http")
    p.add_argument("url")
    p.add_argument("--status", type=int, default=200)
    p.add_argument("--timeout", type=float, default=30)
    p.set_defaults(run=cmd_wait_http)

    p = sub.add_parser("server-state")
    p.add_argument("socket")
    p.add_argument("backend")
    p.add_argument("server")
    p.set_defaults(run=cmd_server_state)

    p = sub.add_parser("retries")
    p.add_argument("socket")
    p.add_argument("backend")
    p.set_defaults(run=cmd_retries)

    p = sub.add_parser("load")
    p.add_argument("--url", required=True, help="HAProxy's frontend, http://127.0.0.1:PORT")
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--pause", type=float, default=0.01, help="seconds each worker waits between requests")
    p.add_argument("--ready-file", required=True, help="created once the workers run")
    p.add_argument("--stop-file", required=True, help="the workers stop once this exists")
    p.add_argument("--report", required=True, help="JSON results are written here")
    p.add_argument("--max-seconds", type=float, default=150)
    p.set_defaults(run=cmd_load)

    p = sub.add_parser("token-check")
    p.add_argument("--issuer", required=True)
    p.add_argument("--verifier", required=True)
    p.set_defaults(run=cmd_token_check)

    args = parser.parse_args()
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
