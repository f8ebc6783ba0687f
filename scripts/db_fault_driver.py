#!/usr/bin/env python3
"""Helper for scripts/db-fault-test.sh (Python 3.11, standard library only).

Subcommand:
  scenario --url URL --pid PID ...
      Runs a steady read/write load against one running opencourse instance, stops its
      PostgreSQL (pg_ctl stop -m fast, then -m immediate in a second cycle) for a few seconds and
      starts it again, and checks every answer against what PostgreSQL was doing at the time:

        - no request ever fails without an answer, hangs past DB_TIMEOUT_SECONDS + 1 s, or gets a
          500 (or any 5xx but 503);
        - while PostgreSQL is down, every request that needs it gets 503 application/problem+json
          with exactly type/title/status/detail and nothing internal in it; /health stays 200
          and /ready answers 503;
        - once PostgreSQL is back, the same process (same pid, same start time) serves again by
          itself within --recovery-seconds: /ready 200, a read 200, a write 201; from then on
          every request succeeds;
        - no acknowledged write is lost: every course the service answered 201 for is readable,
          every acknowledged enrollment is listed, and both are in the database (psql).

      A write whose answer was a 503 (or that overlapped the outage) may or may not have
      committed: the database check is acknowledged <= stored <= acknowledged + unanswered, and
      every stored course must be either acknowledged or one of those unanswered creates (the
      titles are unique), so no row is unexplained either.

  log-kinds LOG
      The instance's log lines grouped by message and kind of error, most frequent first.
  summary REPORT
      One line from a scenario's JSON report.

Other subcommands (ports, wait-http) are scale_out_driver.py's.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field

# The shared HTTP client and helpers of the scale-out test.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no scripts/__pycache__ in the working tree
from scale_out_driver import API, Client, Failure, register, say, stamp  # noqa: E402

# Nothing of the implementation may leak into a problem response (compared case-insensitively).
INTERNAL_MARKERS = ("psql", "postgres", "sql", "select ", "insert ", "update ", "delete ", "/work",
                    "/tmp", ".swift", "error(", "sqlstate", "127.0.0.1", "connection refused",
                    "connectionpool", "channel")
PROBLEM_KEYS = {"type", "title", "status", "detail"}


def driver_say(message: str) -> None:
    print(f"[{stamp()}] db-fault: {message}", file=sys.stderr, flush=True)


@dataclass
class Outcome:
    """One request and its answer (or the lack of one)."""
    op: str
    method: str
    path: str
    started: float                    # time.monotonic()
    ended: float = 0.0
    status: int | None = None
    content_type: str = ""
    raw: bytes = b""
    error: str | None = None          # no answer: connection error or client timeout
    payload: object = None
    title: str | None = None          # the unique title of a create-course request
    course_id: str | None = None      # the course an enroll / get-course request is about
    wall: str = field(default_factory=stamp)

    @property
    def latency(self) -> float:
        return self.ended - self.started

    def describe(self) -> str:
        answer = self.error if self.error else f"{self.status} {self.content_type} {self.raw[:160].decode(errors='replace')}"
        return f"{self.wall} {self.op} {self.method} {self.path} -> {answer} ({self.latency:.2f}s)"


class RawClient(Client):
    """The scale-out client's keep-alive connection, answering every status instead of raising."""

    def send(self, op: str, method: str, path: str, body: dict | None = None,
             token: str | None = None) -> Outcome:
        import http.client
        outcome = Outcome(op, method, path, time.monotonic())
        try:
            self.send_request(method, path, body, token)
            response = self.conn.getresponse()
            outcome.raw = response.read()
            outcome.status = response.status
            outcome.content_type = response.getheader("Content-Type") or ""
            if response.will_close:
                self.close()
        except (OSError, http.client.HTTPException) as error:
            self.close()
            outcome.error = f"{error.__class__.__name__}: {error}"
        outcome.ended = time.monotonic()
        if outcome.raw:
            try:
                outcome.payload = json.loads(outcome.raw)
            except ValueError:
                outcome.payload = None
        return outcome


def problem_defects(outcome: Outcome) -> list[str]:
    """What is wrong with a 503 answer as an RFC 9457 problem without internals."""
    defects = []
    if not outcome.content_type.startswith("application/problem+json"):
        defects.append(f"content-type {outcome.content_type!r}")
    body = outcome.payload
    if not isinstance(body, dict):
        defects.append("body is not a JSON object")
        return defects
    if set(body) != PROBLEM_KEYS:
        defects.append(f"keys {sorted(body)} instead of {sorted(PROBLEM_KEYS)}")
    if body.get("status") != 503:
        defects.append(f"status member {body.get('status')!r}")
    if not isinstance(body.get("detail"), str) or not body.get("detail"):
        defects.append("no detail")
    text = outcome.raw.decode(errors="replace").lower()
    leaked = [marker for marker in INTERNAL_MARKERS if marker in text]
    if leaked:
        defects.append(f"internal text {leaked}")
    return defects


# --- PostgreSQL control ----------------------------------------------------------------------

class Postgres:
    def __init__(self, args: argparse.Namespace) -> None:
        self.as_pg = shlex.split(args.as_pg or "")
        self.pg_ctl = os.path.join(args.pg_bin, "pg_ctl")
        self.psql_bin = os.path.join(args.pg_bin, "psql")
        self.data, self.log, self.opts, self.port = args.pg_data, args.pg_log, args.pg_opts, args.pg_port

    def _run(self, command: list[str]) -> float:
        started = time.monotonic()
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"{shlex.join(command)} exited {result.returncode}: {result.stderr.strip()}")
        return time.monotonic() - started

    def stop(self, mode: str) -> float:
        return self._run(self.as_pg + [self.pg_ctl, "-D", self.data, "-m", mode, "-w", "stop"])

    def start(self) -> float:
        return self._run(self.as_pg + [self.pg_ctl, "-D", self.data, "-l", self.log, "-w", "-o", self.opts, "start"])

    def query(self, sql: str) -> list[str]:
        result = subprocess.run(
            [self.psql_bin, "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "postgres",
             "-v", "ON_ERROR_STOP=1", "-Atc", sql],
            capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise RuntimeError(f"psql {sql!r}: {result.stderr.strip()}")
        return [line for line in result.stdout.splitlines() if line]


def process_start_time(pid: int) -> str | None:
    """The process's start time in clock ticks (field 22 of /proc/PID/stat), None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()[19]


# --- the scenario ----------------------------------------------------------------------------

@dataclass
class Cycle:
    mode: str
    stop_begin: float = 0.0
    stop_end: float = 0.0             # pg_ctl stop returned: PostgreSQL is down
    start_begin: float = 0.0          # pg_ctl start called: PostgreSQL may be back from here on
    start_end: float = 0.0            # pg_ctl start -w returned: PostgreSQL accepts connections
    recovered: float | None = None    # the instance answered /ready 200, a read 200, a write 201


class Scenario:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.pg = Postgres(args)
        self.bound = args.db_timeout + 1.0   # no answer may take longer
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.outcomes: list[Outcome] = []
        self.courses: list[str] = []          # acknowledged creates (201 with an id), seeds first
        self.enrolled: set[str] = set()       # acknowledged enrollments (201/200 with the courseId)
        self.cycles: list[Cycle] = []
        self.failures: list[str] = []
        self.notes: list[str] = []
        self.instructor_token = self.student_token = ""
        self.student_id = ""
        self.start_time = process_start_time(args.pid)

    # -- bookkeeping

    def fail(self, message: str) -> None:
        with self.lock:
            self.failures.append(message)
        if len(self.failures) <= 30:
            driver_say(f"FAILED {message}")

    def keep(self, outcome: Outcome) -> Outcome:
        """Records an outcome; an acknowledged write joins the writes to verify."""
        if outcome.op == "create-course" and outcome.status == 201:
            course_id = outcome.payload.get("id") if isinstance(outcome.payload, dict) else None
            if course_id:
                with self.lock:
                    self.courses.append(course_id)
            else:
                self.fail(f"201 without an id: {outcome.describe()}")
        elif outcome.op == "enroll" and outcome.status in (200, 201):
            if isinstance(outcome.payload, dict) and outcome.payload.get("courseId") == outcome.course_id:
                with self.lock:
                    self.enrolled.add(outcome.course_id)
            else:
                self.fail(f"enrollment acknowledged without its courseId: {outcome.describe()}")
        with self.lock:
            self.outcomes.append(outcome)
        return outcome

    def same_process(self) -> bool:
        return self.start_time is not None and process_start_time(self.args.pid) == self.start_time

    # -- requests

    def create_course(self, client: RawClient, tag: str) -> Outcome:
        title = f"db-fault {tag} {uuid.uuid4().hex[:12]}"
        outcome = client.send("create-course", "POST", f"{API}/courses", {"title": title}, self.instructor_token)
        outcome.title = title
        return self.keep(outcome)

    def worker(self, seed: int) -> None:
        rng = random.Random(seed)
        client = RawClient(self.args.url, timeout=self.args.client_timeout)
        while not self.stop.is_set():
            roll = rng.random()
            with self.lock:
                course_id = rng.choice(self.courses)
            if roll < 0.2:
                self.create_course(client, "load")
            elif roll < 0.35:
                outcome = client.send("enroll", "POST", f"{API}/courses/{course_id}/enroll", None, self.student_token)
                outcome.course_id = course_id
                self.keep(outcome)
            elif roll < 0.6:
                self.keep(client.send("list-courses", "GET", f"{API}/courses?limit=5"))
            elif roll < 0.8:
                outcome = client.send("get-course", "GET", f"{API}/courses/{course_id}")
                outcome.course_id = course_id
                self.keep(outcome)
            else:
                self.keep(client.send("me", "GET", f"{API}/users/me", None, self.student_token))
            time.sleep(self.args.pause)
        client.close()

    def prober(self) -> None:
        """/health and /ready, twice a second, for the whole run."""
        client = RawClient(self.args.url, timeout=self.args.client_timeout)
        while not self.stop.is_set():
            self.keep(client.send("health", "GET", "/health"))
            self.keep(client.send("ready", "GET", "/ready"))
            self.stop.wait(0.5)
        client.close()

    def extra_probes(self) -> list[threading.Thread]:
        """Once per outage, in parallel (each may take the whole DB_TIMEOUT_SECONDS): endpoints the
        load does not use (sign-in, registration, the enrollment listing, the instructor's /me),
        and a read and a write, which the random load might happen not to send while it is down."""
        def probe(op: str, method: str, path: str, body: dict | None = None, token: str | None = None) -> None:
            client = RawClient(self.args.url, timeout=self.args.client_timeout)
            self.keep(client.send(op, method, path, body, token))
            client.close()

        probes = [
            ("login", "POST", f"{API}/auth/login", {"email": self.student_email, "password": self.password}),
            ("register", "POST", f"{API}/auth/register",
             {"email": f"probe-{uuid.uuid4().hex[:10]}@example.com", "password": self.password, "role": "student"}),
            ("my-enrollments", "GET", f"{API}/users/me/enrollments?limit=5", None, self.student_token),
            ("me-instructor", "GET", f"{API}/users/me", None, self.instructor_token),
            ("list-courses", "GET", f"{API}/courses?limit=5"),
        ]
        def create() -> None:
            client = RawClient(self.args.url, timeout=self.args.client_timeout)
            self.create_course(client, "probe")
            client.close()

        threads = [threading.Thread(target=probe, args=arguments, daemon=True) for arguments in probes]
        threads.append(threading.Thread(target=create, daemon=True))
        for thread in threads:
            thread.start()
        return threads

    # -- phases

    def setup(self) -> None:
        client = Client(self.args.url)
        tag = uuid.uuid4().hex[:6]
        self.password = "db-fault password"
        _, _, self.instructor_token = register(client, "instructor", tag)
        self.student_email, _, self.student_token = register(client, "student", tag)
        _, me = client.call("GET", f"{API}/users/me", (200,), None, self.student_token)
        self.student_id = me["id"]
        for n in range(3):
            _, course = client.call("POST", f"{API}/courses", (201,), {"title": f"db-fault seed {n} {tag}"},
                                    self.instructor_token)
            self.courses.append(course["id"])
        client.close()

    def outage(self, mode: str) -> bool:
        """One cycle: stop PostgreSQL, keep it down, start it, wait for the instance to recover."""
        cycle = Cycle(mode)
        self.cycles.append(cycle)
        n = len(self.cycles)
        cycle.stop_begin = time.monotonic()
        took = self.pg.stop(mode)
        cycle.stop_end = time.monotonic()
        driver_say(f"cycle {n}: PostgreSQL stopped (pg_ctl stop -m {mode}, {took:.2f}s); down for {self.args.down_seconds:.0f}s")
        if not self.same_process():
            self.fail(f"cycle {n}: the instance (pid {self.args.pid}) is gone after PostgreSQL stopped")
            return False
        time.sleep(min(1.0, self.args.down_seconds / 4))
        for thread in self.extra_probes():
            thread.join()
        remaining = cycle.stop_end + self.args.down_seconds - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)
        probes = RawClient(self.args.url, timeout=self.args.client_timeout)
        cycle.start_begin = time.monotonic()
        took = self.pg.start()
        cycle.start_end = time.monotonic()
        driver_say(f"cycle {n}: PostgreSQL started again (pg_ctl start -w, {took:.2f}s); waiting for the instance to recover")
        # Recovery: the same process answers /ready 200, a read 200 and a write 201 in one round.
        deadline = cycle.start_end + self.args.recovery_seconds
        while time.monotonic() < deadline:
            ready = self.keep(probes.send("ready", "GET", "/ready"))
            if ready.status == 200:
                read = self.keep(probes.send("list-courses", "GET", f"{API}/courses?limit=5"))
                write = self.create_course(probes, "recovery")
                if read.status == 200 and write.status == 201:
                    cycle.recovered = time.monotonic()
                    break
            time.sleep(0.2)
        probes.close()
        if cycle.recovered is None:
            self.fail(f"cycle {n}: not recovered {self.args.recovery_seconds:.0f}s after PostgreSQL came back")
            return False
        driver_say(f"cycle {n}: recovered {cycle.recovered - cycle.start_end:.2f}s after PostgreSQL accepted connections")
        if not self.same_process():
            self.fail(f"cycle {n}: the instance serving is not the process started at first (pid {self.args.pid})")
            return False
        return True

    # -- checks

    def judge(self, end: float) -> None:
        """Checks every outcome against what PostgreSQL was doing while it was in flight."""
        def disturbed(o: Outcome) -> bool:  # overlapped an outage, from stop to recovery
            return any(o.ended >= c.stop_begin and o.started <= (c.recovered or end) for c in self.cycles)

        def fully_down(o: Outcome) -> bool:  # entirely while PostgreSQL was stopped
            return any(o.started >= c.stop_end and o.ended <= c.start_begin for c in self.cycles)

        success = {"create-course": (201,), "enroll": (201, 200), "list-courses": (200,), "get-course": (200,),
                   "me": (200,), "health": (200,), "ready": (200,), "login": (200,), "register": (201,),
                   "my-enrollments": (200,), "me-instructor": (200,)}
        # Each outage must actually have been observed, or the rules below would hold vacuously.
        for n, c in enumerate(self.cycles, 1):
            if c.start_begin == 0.0:
                continue  # the cycle broke off before PostgreSQL was started again (already failed)
            during = [o for o in self.outcomes if o.started >= c.stop_end and o.ended <= c.start_begin]
            for op, status in (("ready", 503), ("health", 200), ("create-course", 503), ("list-courses", 503)):
                if not any(o.op == op and o.status == status for o in during):
                    self.fail(f"cycle {n}: no {op} answered {status} while PostgreSQL was down")
        for o in self.outcomes:
            if o.error is not None:
                self.fail(f"no answer: {o.describe()}")
                continue
            if o.latency > self.bound:
                self.fail(f"slower than DB_TIMEOUT_SECONDS + 1s = {self.bound:.1f}s: {o.describe()}")
            if o.op == "health":
                if o.status != 200:
                    self.fail(f"/health is not 200: {o.describe()}")
                continue
            if o.status == 503:
                defects = problem_defects(o)
                if defects:
                    self.fail(f"503 that is not a clean problem ({'; '.join(defects)}): {o.describe()}")
                if not disturbed(o):
                    self.fail(f"503 while PostgreSQL was up and the instance recovered: {o.describe()}")
            elif o.status in success[o.op]:
                if fully_down(o):
                    self.fail(f"{o.status} while PostgreSQL was down: {o.describe()}")
            elif o.status is not None and o.status >= 500:
                self.fail(f"{o.status} (only 503 is acceptable): {o.describe()}")
            else:
                self.fail(f"unexpected status: {o.describe()}")

    def verify(self) -> dict:
        """Nothing acknowledged lost: through the API, then in the database itself."""
        client = Client(self.args.url)
        readable = 0
        for course_id in self.courses:
            try:
                _, course = client.call("GET", f"{API}/courses/{course_id}", (200,))
                if course.get("id") == course_id:
                    readable += 1
                else:
                    self.fail(f"GET course {course_id} answered id {course.get('id')}")
            except Failure as failure:
                self.fail(f"acknowledged course not readable: {failure}")
        listed: set[str] = set()
        cursor, pages = None, 0
        try:
            while True:
                query = "limit=100" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
                _, page = client.call("GET", f"{API}/users/me/enrollments?{query}", (200,), None, self.student_token)
                pages += 1
                listed.update(item["courseId"] for item in page["data"])
                cursor = page.get("nextCursor")
                if not cursor:
                    break
        except Failure as failure:
            self.fail(f"listing the student's enrollments: {failure}")
        client.close()
        missing = self.enrolled - listed
        if missing:
            self.fail(f"{len(missing)} acknowledged enrollment(s) not listed, e.g. {sorted(missing)[:3]}")

        # The database: acknowledged <= stored <= acknowledged + unanswered, nothing unexplained.
        rows = [line.split("|", 1) for line in self.pg.query("select id, title from courses")]
        stored = {row[0]: row[1] for row in rows}
        acknowledged = set(self.courses)
        lost = acknowledged - set(stored)
        if lost:
            self.fail(f"{len(lost)} acknowledged course(s) not in the database, e.g. {sorted(lost)[:3]}")
        unanswered = [o for o in self.outcomes if o.op == "create-course" and o.status != 201]
        unanswered_titles = {o.title: o for o in unanswered}
        extra = {cid: title for cid, title in stored.items() if cid not in acknowledged}
        committed_anyway = [unanswered_titles[t] for t in extra.values() if t in unanswered_titles]
        unexplained = [cid for cid, t in extra.items() if t not in unanswered_titles]
        if unexplained:
            self.fail(f"{len(unexplained)} course row(s) nobody asked for or no request explains, e.g. {unexplained[:3]}")
        for o in committed_anyway:
            down = any(o.started >= c.stop_end and o.ended <= c.start_begin for c in self.cycles)
            self.notes.append(f"create answered {o.status} but committed{' (its whole request was during the outage)' if down else ''}: {o.describe()}")
        if not unanswered and len(stored) != len(acknowledged):
            self.fail(f"{len(stored)} courses stored but {len(acknowledged)} acknowledged and no create unanswered")

        enrolled_rows = set(self.pg.query(f"select course_id from enrollments where user_id = '{self.student_id}'"))
        lost_enrollments = self.enrolled - enrolled_rows
        if lost_enrollments:
            self.fail(f"{len(lost_enrollments)} acknowledged enrollment(s) not in the database, e.g. {sorted(lost_enrollments)[:3]}")
        return {
            "acknowledgedCourses": len(acknowledged), "readableCourses": readable,
            "acknowledgedEnrollments": len(self.enrolled), "listedEnrollments": len(listed & self.enrolled),
            "enrollmentPages": pages, "storedCourses": len(stored), "unansweredCreates": len(unanswered),
            "unansweredCreatesCommitted": len(committed_anyway), "storedEnrollments": len(enrolled_rows),
        }

    def cycle_report(self, end: float) -> list[dict]:
        report = []
        for n, c in enumerate(self.cycles, 1):
            during = [o for o in self.outcomes if o.started >= c.stop_end and o.ended <= c.start_begin]
            db = [o for o in during if o.op not in ("health", "ready")]
            statuses: dict[str, int] = {}
            for o in db:
                key = str(o.status if o.error is None else "no answer")
                statuses[key] = statuses.get(key, 0) + 1
            latencies = [o.latency for o in db]
            ready_latencies = [o.latency for o in during if o.op == "ready"]
            after = [o for o in self.outcomes if o.started >= c.start_end and o.op not in ("health", "ready")]
            first_ok = min((o.ended for o in after if o.status in (200, 201)), default=None)
            report.append({
                "cycle": n, "mode": c.mode,
                "downSeconds": round(c.start_begin - c.stop_end, 2),
                "dbRequestsWhileDown": len(db), "statusesWhileDown": statuses,
                "medianLatencyWhileDown": round(statistics.median(latencies), 3) if latencies else None,
                "maxLatencyWhileDown": round(max(latencies), 3) if latencies else None,
                "readyWhileDown": sorted({o.status for o in during if o.op == "ready"}, key=str),
                "maxReadyLatencyWhileDown": round(max(ready_latencies), 3) if ready_latencies else None,
                "probesWhileDown": {o.op: o.status for o in during if o.op in ("login", "register", "my-enrollments", "me-instructor")},
                "opsWhileDown": {op: sum(1 for o in db if o.op == op) for op in sorted({o.op for o in db})},
                "healthWhileDown": sorted({o.status for o in during if o.op == "health"}, key=str),
                # Every request that overlapped the outage, times relative to pg_ctl stop returning.
                "timeline": [f"{o.started - c.stop_end:+.3f}..{o.ended - c.stop_end:+.3f} {o.op} "
                             f"{o.status if o.error is None else o.error}"
                             for o in sorted(self.outcomes, key=lambda o: o.started)
                             if o.ended >= c.stop_begin and o.started <= (c.recovered or end)][:300],
                "firstSuccessAfterStart": round(first_ok - c.start_end, 2) if first_ok else None,
                "recoveredAfterStart": round(c.recovered - c.start_end, 2) if c.recovered else None,
            })
        return report

    def run(self) -> int:
        try:
            self.setup()
        except Failure as failure:
            driver_say(f"setup failed: {failure}")
            return 2
        threads = [threading.Thread(target=self.worker, args=(n,), daemon=True) for n in range(self.args.workers)]
        threads.append(threading.Thread(target=self.prober, daemon=True))
        began = time.monotonic()
        for thread in threads:
            thread.start()
        driver_say(f"{self.args.workers} workers and a /health+/ready prober running against {self.args.url}")
        time.sleep(self.args.steady_seconds)  # baseline: everything must succeed
        for mode in self.args.modes.split(","):
            try:
                ok = self.outage(mode)
            except (RuntimeError, subprocess.TimeoutExpired) as error:
                self.fail(f"controlling PostgreSQL: {error}")
                ok = False
            if not ok:
                break
            time.sleep(self.args.steady_seconds)  # after recovery: everything must succeed again
        self.stop.set()
        for thread in threads:
            thread.join(timeout=self.args.client_timeout + 5)
        end = time.monotonic()
        self.judge(end)
        verification: dict = {}
        recovered = all(c.recovered for c in self.cycles)
        if recovered:
            try:
                verification = self.verify()
            except (RuntimeError, subprocess.TimeoutExpired) as error:
                self.fail(f"verification: {error}")
        else:
            self.fail("acknowledged writes not verified: the instance never recovered")
        if not self.same_process():
            self.fail(f"the process started at first (pid {self.args.pid}) is not the one running now")
        cycles = self.cycle_report(end)
        for c in cycles:
            driver_say(f"cycle {c['cycle']} (-m {c['mode']}): {c['dbRequestsWhileDown']} DB requests during "
                       f"{c['downSeconds']}s down: {c['statusesWhileDown']}, latency median "
                       f"{c['medianLatencyWhileDown']}s max {c['maxLatencyWhileDown']}s (probes {c['probesWhileDown']}); "
                       f"/ready {c['readyWhileDown']} in at most {c['maxReadyLatencyWhileDown']}s, "
                       f"/health {c['healthWhileDown']}; first success {c['firstSuccessAfterStart']}s and recovered "
                       f"{c['recoveredAfterStart']}s after PostgreSQL was back")
        for note in self.notes[:10]:
            driver_say(f"note: {note}")
        statuses: dict[str, int] = {}
        for o in self.outcomes:
            key = str(o.status if o.error is None else "no answer")
            statuses[key] = statuses.get(key, 0) + 1
        report = {
            "requests": len(self.outcomes), "statuses": statuses, "seconds": round(end - began, 1),
            "maxLatency": round(max((o.latency for o in self.outcomes), default=0), 3),
            "boundSeconds": self.bound, "cycles": cycles, "verification": verification,
            "failures": self.failures, "notes": self.notes, "sameProcess": self.same_process(),
        }
        with open(self.args.report, "w") as out:
            json.dump(report, out, indent=2)
        return 0 if not self.failures else 1


def cmd_scenario(args: argparse.Namespace) -> int:
    return Scenario(args).run()


def cmd_summary(args: argparse.Namespace) -> int:
    """One line from a scenario's report, for the shell script's verdict."""
    with open(args.report) as report_file:
        r = json.load(report_file)
    v = r["verification"]
    outages = "; ".join(
        f"-m {c['mode']}: {c['dbRequestsWhileDown']} requests while down -> "
        + ",".join(f"{status}x{count}" for status, count in sorted(c["statusesWhileDown"].items()))
        + f" (max {c['maxLatencyWhileDown']}s), /ready {c['readyWhileDown']}, recovered in {c['recoveredAfterStart']}s"
        for c in r["cycles"])
    print(f"{r['requests']} requests, max latency {r['maxLatency']}s (bound {r['boundSeconds']}s); {outages}; "
          f"courses {v.get('readableCourses', '?')}/{v.get('acknowledgedCourses', '?')} acknowledged readable, "
          f"{v.get('storedCourses', '?')} stored ({v.get('unansweredCreatesCommitted', '?')} of "
          f"{v.get('unansweredCreates', '?')} unanswered creates committed); enrollments "
          f"{v.get('listedEnrollments', '?')}/{v.get('acknowledgedEnrollments', '?')} listed; "
          f"same process: {r['sameProcess']}; {len(r['failures'])} failed checks")
    return 0


def cmd_log_kinds(args: argparse.Namespace) -> int:
    """The instance's log lines grouped by message and the start of their error, most frequent
    first: which driver errors the outages produced."""
    import re
    kinds: dict[str, int] = {}
    with open(args.log, errors="replace") as log_file:
        for line in log_file:
            try:
                entry = json.loads(line)
                text = f"{entry.get('level')} {entry.get('msg')}: {entry.get('error', '')}"
            except ValueError:
                text = line.strip()
            text = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "<uuid>", text)  # keep kinds, not instances
            text = re.sub(r"\d+", "N", text)[:args.width]
            kinds[text] = kinds.get(text, 0) + 1
    for text, count in sorted(kinds.items(), key=lambda item: -item[1])[:args.top]:
        print(f"{count:5d}  {text}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("scenario")
    p.add_argument("--url", required=True, help="the instance, http://127.0.0.1:PORT")
    p.add_argument("--pid", type=int, required=True, help="the instance's process id")
    p.add_argument("--db-timeout", type=float, required=True, help="the instance's DB_TIMEOUT_SECONDS")
    p.add_argument("--pg-bin", required=True, help="folder of pg_ctl and psql")
    p.add_argument("--pg-data", required=True)
    p.add_argument("--pg-log", required=True)
    p.add_argument("--pg-opts", required=True, help="the server options of every start (pg_ctl -o)")
    p.add_argument("--pg-port", type=int, required=True)
    p.add_argument("--as-pg", default="", help="command prefix running pg_ctl as the server's user")
    p.add_argument("--modes", default="fast,immediate", help="pg_ctl stop modes, one outage each")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--pause", type=float, default=0.02, help="seconds each worker waits between requests")
    p.add_argument("--steady-seconds", type=float, default=3, help="undisturbed load before and after each outage")
    p.add_argument("--down-seconds", type=float, default=5, help="how long PostgreSQL stays down")
    p.add_argument("--recovery-seconds", type=float, default=30)
    p.add_argument("--client-timeout", type=float, default=15, help="a request unanswered this long has hung")
    p.add_argument("--report", required=True, help="JSON results are written here")
    p.set_defaults(run=cmd_scenario)
    p = sub.add_parser("log-kinds")
    p.add_argument("log")
    p.add_argument("--top", type=int, default=8)
    p.add_argument("--width", type=int, default=220)
    p.set_defaults(run=cmd_log_kinds)
    p = sub.add_parser("summary")
    p.add_argument("report")
    p.set_defaults(run=cmd_summary)
    args = parser.parse_args()
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
