#!/usr/bin/env python3
"""Helper for scripts/soak-test.sh (Python 3.11, standard library only).

Subcommands:
  run --url URL --pid PID --seconds N --clients N --pg-bin DIR --pg-port PORT --report FILE
      Seeds a few instructors, students and courses through the API, then runs --clients
      concurrent keep-alive clients for --seconds, each drawing operations from a weighted mix of
      every endpoint (and of invalid requests), checks every answer against the state the
      clients know, and afterwards checks the acknowledged writes in the database (psql).

  summary REPORT
      One line from a run's JSON report.

Other subcommands (ports, wait-http) are scale_out_driver.py's; log-kinds is db_fault_driver.py's.

What the clients know, and so which statuses are expected:
  - A user is checked out by one client at a time (its profile, password, email and enrollments
    change only through that client), so its state is exact while the client holds it: GET
    /users/me must show the last acknowledged name and email, enrolling again must answer 200
    with the enrollment id of the earlier 201, unenrolling when not enrolled must answer 404.
  - Only a course's owner (checked out while it acts) updates or deletes the course, so for
    the owner an update is 200 and a delete 204, never 404.
  - Any other client may see a course vanish: a 404 for a course is expected when the course's
    deletion was acknowledged before the request was sent, and allowed when a delete had been
    sent before the answer arrived (the race); any other 404 is unexpected. A 200 for a course
    whose delete was acknowledged before the request was sent is a stale read.
  - A read of a course (GET, or an item of a list page) must show either the version last
    acknowledged before the request was sent or one whose update was sent before the answer
    arrived: the catalog cache promises that a change invalidates at once.
  - Catalog pages walked with nextCursor never repeat a course and never skip one that existed
    during the whole walk, and each page is newest first; q and createdBy filters hold.
  - Invalid requests (bad bodies, bad ids, bad paging, missing or forged tokens, foreign
    courses, wrong currentPassword, taken emails) get exactly their documented 4xx.
Any 5xx, any unanswered request and any unexpected status fails the run.

Afterwards, in the database: no duplicate (user_id, course_id), no orphan enrollment or course,
the users, courses and enrollments are exactly the acknowledged ones (a course delete cascades
its enrollments), names, emails, titles and descriptions are the last acknowledged ones. Through
the API: the whole catalog, paged, is exactly the live courses, and changed passwords and emails
sign in. The server's RSS is sampled every second; see memory_verdict for the rule.
"""
from __future__ import annotations

import argparse
import bisect
import collections
import json
import os
import random
import sys
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field

# The shared HTTP clients and PostgreSQL helper of the other system tests.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no scripts/__pycache__ in the working tree
from scale_out_driver import API, stamp  # noqa: E402
from db_fault_driver import Outcome, Postgres, RawClient, process_start_time  # noqa: E402

MIB = 1024 * 1024
MEMORY_TOLERANCE = 16 * MIB  # see Soak.memory_verdict

# Relative weights of the operations each client draws from.
WEIGHTS = {
    "register": 5, "login": 4, "me": 5, "me-name": 6, "me-email": 1, "me-password": 1,
    "list-courses": 12, "get-course": 12, "create-course": 5, "update-course-put": 3,
    "update-course-patch": 3, "delete-course": 2, "foreign-course-write": 1.5, "enroll": 12,
    "enroll-again": 3, "unenroll": 4, "unenroll-not-enrolled": 1.5, "my-enrollments": 5,
    "roster": 3, "foreign-roster": 1, "invalid": 6, "contend-enroll": 0.7, "contend-delete": 0.5,
}
# Kinds grouped for the one-line summary.
GROUPS = {
    "auth": ("register", "login"),
    "profile": ("me", "me-name", "me-email", "me-password"),
    "catalog reads": ("list-courses", "get-course"),
    "course writes": ("create-course", "update-course-put", "update-course-patch", "delete-course",
                      "foreign-course-write"),
    "enrollments": ("enroll", "enroll-again", "unenroll", "unenroll-not-enrolled", "my-enrollments"),
    "rosters": ("roster", "foreign-roster"),
    "invalid": ("invalid",),
    "contention": ("contend-enroll", "contend-delete"),
}
# Words of course titles, and what `q` searches for: non-ASCII letters, and LIKE's wildcards
# (% and _ are ordinary characters for q).
WORDS = ("Swift", "Kernels", "Ünïcode", "Databases", "Café", "50%_off", "Zürich", "data_lake")
QUERIES = ("swift", "KERNELS", "ünïcode", "Datab", "café", "%_o", "zürich", "_lake", "0%", "nothing-matches")
PASSWORD = "soak password 0"


def driver_say(message: str) -> None:
    print(f"[{stamp()}] soak: {message}", file=sys.stderr, flush=True)


@dataclass
class RawBody:
    """A request body sent as it is (not JSON-encoded), for the invalid-request probes."""
    data: bytes
    content_type: str = "application/json"


class SoakClient(RawClient):
    """db_fault_driver's RawClient (every status answered, never raising), which can also send a
    raw body: malformed JSON, a wrong content type, more than MAX_BODY_BYTES."""

    def send_request(self, method: str, path: str, body: dict | RawBody | None, token: str | None) -> None:
        if not isinstance(body, RawBody):
            return super().send_request(method, path, body, token)
        headers = {"Accept": "application/json", "Content-Type": body.content_type}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        self.connection().request(method, path, body=body.data, headers=headers)


# --- what the clients know -------------------------------------------------------------------

@dataclass
class UserState:
    id: str
    email: str                       # as stored: trimmed and lower-cased
    password: str
    name: str | None
    role: str
    token: str
    fixed: bool = False              # a seed user: its email never changes (taken-email probes)
    busy: bool = False               # checked out by a client
    enrolled: dict[str, str] = field(default_factory=dict)  # course id -> acknowledged enrollment id
    # course id -> [sent, acknowledged] of the last enroll/unenroll (for roster checks)
    marks: dict[str, list[float]] = field(default_factory=dict)
    uncertain: bool = False          # a write of this user got an unexpected answer: not compared
    password_changed: bool = False
    email_changed: bool = False


@dataclass
class Version:
    sent: float
    acked: float | None
    title: str
    description: str | None


@dataclass
class CourseState:
    id: str
    owner: str
    created_at: str                  # the server's createdAt, for paging order
    created_ack: float
    versions: list[Version]
    delete_sent: float | None = None
    deleted_at: float | None = None  # the delete was acknowledged (204)
    uncertain: bool = False          # a write of this course got an unexpected answer


class Registry:
    """Users and courses whose creation was acknowledged, and their acknowledged changes."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.users: dict[str, UserState] = {}
        self.by_role: dict[str, list[str]] = {"student": [], "instructor": []}
        self.fixed: list[UserState] = []
        self.courses: dict[str, CourseState] = {}
        self.live: list[str] = []
        self.live_index: dict[str, int] = {}
        self.recent: collections.deque[str] = collections.deque(maxlen=12)  # the hot courses
        self.deleted: collections.deque[str] = collections.deque(maxlen=500)
        self.owned: dict[str, set[str]] = collections.defaultdict(set)    # owner -> live courses
        self.members: dict[str, set[str]] = collections.defaultdict(set)  # course -> enrolled users
        self.by_created: list[tuple[str, str]] = []                       # (createdAt, id), sorted
        self.title_requests: dict[str, str] = {}   # unique titles sent in creates that were not 201
        self.email_requests: set[str] = set()       # emails sent in registrations that were not 201

    def add_user(self, user: UserState) -> None:
        with self.lock:
            self.users[user.id] = user
            self.by_role[user.role].append(user.id)
            if user.fixed:
                self.fixed.append(user)

    def checkout(self, rng: random.Random, role: str | None = None, exclude: set[str] | None = None) -> UserState | None:
        """A random user nobody drives at the moment (role None: mostly students), or None."""
        with self.lock:
            for _ in range(8):
                pool = self.by_role[role or ("instructor" if rng.random() < 0.25 else "student")]
                if not pool:
                    continue
                user = self.users[rng.choice(pool)]
                if not user.busy and not (exclude and user.id in exclude):
                    user.busy = True
                    return user
        return None

    def checkout_many(self, rng: random.Random, role: str, count: int, exclude: set[str]) -> list[UserState]:
        users: list[UserState] = []
        for _ in range(count):
            user = self.checkout(rng, role, exclude | {u.id for u in users})
            if user:
                users.append(user)
        return users

    def release(self, *users: UserState | None) -> None:
        with self.lock:
            for user in users:
                if user is not None:
                    user.busy = False

    def add_course(self, course: CourseState) -> None:
        with self.lock:
            self.courses[course.id] = course
            self.live_index[course.id] = len(self.live)
            self.live.append(course.id)
            self.recent.append(course.id)
            self.owned[course.owner].add(course.id)
            bisect.insort(self.by_created, (course.created_at, course.id))

    def course_deleted(self, course: CourseState, at: float) -> None:
        with self.lock:
            course.deleted_at = at
            index = self.live_index.pop(course.id, None)
            if index is not None:  # swap-remove
                last = self.live.pop()
                if last != course.id:
                    self.live[index] = last
                    self.live_index[last] = index
            self.owned[course.owner].discard(course.id)
            self.deleted.append(course.id)

    def pick_course(self, rng: random.Random, hot: float = 0.45, deleted: float = 0.05) -> CourseState | None:
        """A known course: sometimes a deleted one, often a hot (recently created) one."""
        with self.lock:
            roll = rng.random()
            if roll < deleted and self.deleted:
                return self.courses[rng.choice(self.deleted)]
            if roll < deleted + hot and self.recent:
                return self.courses[rng.choice(self.recent)]
            if self.live:
                return self.courses[rng.choice(self.live)]
        return None


def course_statuses(course: CourseState, normal: set[int], o: Outcome) -> set[int]:
    """The statuses a request about `course` may get, given when its deletion was sent and
    acknowledged relative to the request: only 404 once the delete was acknowledged before the
    request was sent; 404 allowed as well when a delete was sent before the answer arrived."""
    if course.deleted_at is not None and course.deleted_at <= o.started:
        return {404}
    if course.delete_sent is not None and course.delete_sent <= o.ended:
        return normal | {404}
    return normal


def vanishing(course: CourseState, until: float) -> bool:
    """A delete of the course had been sent by `until`."""
    return course.delete_sent is not None and course.delete_sent <= until


def allowed_versions(course: CourseState, started: float, ended: float) -> set[tuple[str, str | None]]:
    """What a read sent at `started` and answered at `ended` may show: the version acknowledged
    last before it was sent, or any later one whose update was sent before the answer."""
    base = 0
    for index, version in enumerate(course.versions):
        if version.acked is not None and version.acked <= started:
            base = index
    allowed = {(course.versions[base].title, course.versions[base].description)}
    allowed.update((v.title, v.description) for v in course.versions[base + 1:] if v.sent <= ended)
    return allowed


# --- the run ---------------------------------------------------------------------------------

class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.reg = Registry()
        self.pg = Postgres(args)
        self.tag = uuid.uuid4().hex[:6]
        self.lock = threading.Lock()
        self.counter = 0
        self.stop = threading.Event()
        self.ops: collections.Counter[str] = collections.Counter()
        self.requests = 0
        self.statuses: collections.Counter[str] = collections.Counter()
        self.server_errors = 0
        self.unanswered = 0
        self.unexpected = 0
        self.unexpected_by_kind: collections.Counter[str] = collections.Counter()
        self.violations = 0
        self.violations_by_kind: collections.Counter[str] = collections.Counter()
        self.details: list[str] = []
        self.max_latency = 0.0
        self.races: collections.Counter[str] = collections.Counter()   # outcomes of deliberate races
        self.rss: list[tuple[float, int]] = []   # (seconds since the load began, bytes)
        self.load_began = 0.0
        self.load_seconds = 0.0
        self.start_time = process_start_time(args.pid)

    # -- bookkeeping

    def count_op(self, kind: str) -> None:
        with self.lock:
            self.ops[kind] += 1

    def next_number(self) -> int:
        with self.lock:
            self.counter += 1
            return self.counter

    def detail(self, message: str) -> None:
        with self.lock:
            if len(self.details) < 300:
                self.details.append(message)
            shown = len(self.details) <= 40
        if shown:
            driver_say(message)

    def violation(self, kind: str, message: str) -> None:
        with self.lock:
            self.violations += 1
            self.violations_by_kind[kind] += 1
        self.detail(f"VIOLATION {kind}: {message}")

    def check(self, kind: str, o: Outcome, allowed: set[int], context: str = "") -> bool:
        """Counts an answer; True when it is one of the allowed statuses."""
        with self.lock:
            self.requests += 1
            self.max_latency = max(self.max_latency, o.latency)
            self.statuses[str(o.status) if o.error is None else "no answer"] += 1
        suffix = f" [{context}]" if context else ""
        if o.error is not None:
            with self.lock:
                self.unanswered += 1
            self.detail(f"UNANSWERED {kind}: {o.describe()}{suffix}")
            return False
        if o.status >= 500:
            with self.lock:
                self.server_errors += 1
            self.detail(f"{o.status} {kind}: {o.describe()}{suffix}")
            return False
        if o.status not in allowed:
            with self.lock:
                self.unexpected += 1
                self.unexpected_by_kind[kind] += 1
            self.detail(f"UNEXPECTED {kind} (expected {'/'.join(map(str, sorted(allowed)))}): {o.describe()}{suffix}")
            return False
        return True

    def check_course(self, kind: str, course: CourseState, normal: set[int], o: Outcome, context: str = "") -> bool:
        """check() with the statuses course_statuses allows; counts the 404s only the race explains."""
        ok = self.check(kind, o, course_statuses(course, normal, o), context)
        if ok and o.status == 404 and 404 not in normal:
            with self.lock:
                self.races["404 while the course was being deleted" if course.deleted_at is None or course.deleted_at > o.started
                           else "404 for a deleted course (no race)"] += 1
        return ok

    # -- seeding

    def register_user(self, client: SoakClient, kind: str, role: str, fixed: bool = False,
                      rng: random.Random | None = None) -> UserState | None:
        n = self.next_number()
        email = f"soak-{self.tag}-{n}@example.com"
        sent_email, name, password = email, f"Seed {role} {n}", f"soak password {n}"
        body: dict = {"email": email, "password": password, "role": role, "name": name}
        if rng is not None:  # variations: letter case and spaces in the email, names, the default role
            if rng.random() < 0.3:
                sent_email = f"  Soak-{self.tag}-{n}@Example.COM "
            name = rng.choice((None, "", f"User {n}", f"  Zoë Ünïcode {n}  ", f"名前 {n}"))
            body = {"email": sent_email, "password": password, "role": role}
            if name is not None:
                body["name"] = name
            if role == "student" and rng.random() < 0.3:
                del body["role"]
        o = client.send(kind, "POST", f"{API}/auth/register", body)
        expected_name = name.strip(" ") or None if name is not None else None
        if not self.check(kind, o, {201}, f"register {email}"):
            with self.reg.lock:
                self.reg.email_requests.add(email)
            return None
        payload = o.payload if isinstance(o.payload, dict) else {}
        user = payload.get("user") or {}
        if (user.get("email") != email or user.get("role") != role or user.get("name") != expected_name
                or not payload.get("accessToken") or not user.get("id")):
            self.violation("register-answer", f"sent {body}, answered {payload.get('user')}")
        state = UserState(id=user.get("id") or f"unknown-{n}", email=email, password=password, name=expected_name,
                          role=role, token=payload.get("accessToken") or "", fixed=fixed)
        self.reg.add_user(state)
        return state

    def create_course(self, client: SoakClient, kind: str, owner: UserState, rng: random.Random) -> CourseState | None:
        n = self.next_number()
        word = rng.choice(WORDS)
        title = f"{word} course {self.tag}-{n}"
        sent_title = f"  {title} " if rng.random() < 0.1 else title
        description = rng.choice((None, f"About {word}.", f"Line one\nline two\twith a tab ({n})", ""))
        body: dict = {"title": sent_title}
        if description is not None:
            body["description"] = description
        o = client.send(kind, "POST", f"{API}/courses", body, owner.token)
        if not self.check(kind, o, {201}, f"create {title!r}"):
            with self.reg.lock:
                self.reg.title_requests[title] = kind
            return None
        c = o.payload if isinstance(o.payload, dict) else {}
        if (c.get("title") != title or c.get("description") != description or c.get("createdBy") != owner.id
                or not c.get("id") or not c.get("createdAt")):
            self.violation("create-answer", f"sent {body} as {owner.id}, answered {c}")
            if not c.get("id"):
                return None
        course = CourseState(id=c["id"], owner=owner.id, created_at=c.get("createdAt", ""), created_ack=o.ended,
                             versions=[Version(o.ended, o.ended, title, description)])
        self.reg.add_course(course)
        return course

    def seed(self) -> None:
        client = SoakClient(self.args.url, timeout=self.args.client_timeout)
        rng = random.Random(0)
        instructors = [self.register_user(client, "seed", "instructor", fixed=True) for _ in range(self.args.seed_instructors)]
        students = [self.register_user(client, "seed", "student", fixed=True) for _ in range(self.args.seed_students)]
        if not all(instructors) or not all(students):
            raise RuntimeError("seeding users failed")
        for instructor in instructors:
            for _ in range(3):
                if not self.create_course(client, "seed", instructor, rng):
                    raise RuntimeError("seeding courses failed")
        client.close()
        driver_say(f"seeded {len(instructors)} instructors, {len(students)} students and "
                   f"{len(self.reg.courses)} courses through the API")

    # -- the operations: each checks out what it acts as, and falls back to a read without it

    def op_register(self, client: SoakClient, rng: random.Random) -> None:
        self.register_user(client, "register", "instructor" if rng.random() < 0.25 else "student", rng=rng)

    def op_login(self, client: SoakClient, rng: random.Random, user: UserState) -> None:
        email = user.email.upper() if rng.random() < 0.3 else user.email
        o = client.send("login", "POST", f"{API}/auth/login", {"email": email, "password": user.password})
        if self.check("login", o, {200}, f"user {user.id}") and isinstance(o.payload, dict):
            if (o.payload.get("user") or {}).get("id") != user.id or not o.payload.get("accessToken"):
                self.violation("login-answer", f"login of {user.id} answered {o.payload}")
            else:
                user.token = o.payload["accessToken"]

    def check_profile(self, kind: str, user: UserState, payload: object) -> None:
        if user.uncertain or not isinstance(payload, dict):
            return
        seen = (payload.get("id"), payload.get("email"), payload.get("name"), payload.get("role"))
        if seen != (user.id, user.email, user.name, user.role):
            self.violation("profile", f"{kind}: expected {(user.id, user.email, user.name, user.role)}, got {seen}")

    def op_me(self, client: SoakClient, rng: random.Random, user: UserState) -> None:
        o = client.send("me", "GET", f"{API}/users/me", None, user.token)
        if self.check("me", o, {200}, f"user {user.id}"):
            self.check_profile("GET /users/me", user, o.payload)

    def op_me_name(self, client: SoakClient, rng: random.Random, user: UserState) -> None:
        n = self.next_number()
        name = rng.choice((f"Name {n}", f"  Ünïcode Zoë {n} ", "", None, f"名前 {n}", f"Name {n} " + "x" * 60))
        body: dict = {"name": name}
        if rng.random() < 0.2:
            body["role"] = "admin"  # unknown to PUT /users/me: ignored
        o = client.send("me-name", "PUT", f"{API}/users/me", body, user.token)
        if self.check("me-name", o, {200}, f"user {user.id}"):
            user.name = (name or "").strip(" ") or None
            self.check_profile("PUT /users/me name", user, o.payload)
        else:
            user.uncertain = True

    def op_me_email(self, client: SoakClient, rng: random.Random, user: UserState) -> None:
        if user.fixed:
            return self.op_me_name(client, rng, user)
        n = self.next_number()
        email = f"soak-{self.tag}-{n}-changed@example.com"
        body: dict = {"email": email.upper() if rng.random() < 0.3 else email, "currentPassword": user.password}
        if rng.random() < 0.3:
            body["name"] = f"Renamed {n}"
        o = client.send("me-email", "PUT", f"{API}/users/me", body, user.token)
        if self.check("me-email", o, {200}, f"user {user.id}"):
            user.email, user.email_changed = email, True
            if "name" in body:
                user.name = body["name"]
            self.check_profile("PUT /users/me email", user, o.payload)
        else:
            user.uncertain = True

    def op_me_password(self, client: SoakClient, rng: random.Random, user: UserState) -> None:
        new = f"soak password {self.next_number()} é"
        o = client.send("me-password", "PUT", f"{API}/users/me", {"password": new, "currentPassword": user.password}, user.token)
        if not self.check("me-password", o, {200}, f"user {user.id}"):
            user.uncertain = True
            return
        old, user.password, user.password_changed = user.password, new, True
        self.check_profile("PUT /users/me password", user, o.payload)
        self.op_login(client, rng, user)  # the new password signs in ...
        if rng.random() < 0.5:            # ... and the old one no longer does
            o = client.send("me-password", "POST", f"{API}/auth/login", {"email": user.email, "password": old})
            self.check("me-password", o, {401}, "old password")

    def walk_catalog(self, client: SoakClient, rng: random.Random) -> None:
        """Follows nextCursor a few pages, with q or createdBy sometimes; checks order, filters,
        repeats, skips, and that every known course shows an allowed version."""
        limit = rng.choice((1, 2, 5, 10, 20))
        params: dict[str, str] = {"limit": str(limit)}
        q = created_by = None
        roll = rng.random()
        if roll < 0.25:
            q = params["q"] = rng.choice(QUERIES)
        elif roll < 0.45:
            with self.reg.lock:
                owners = self.reg.by_role["instructor"]
                created_by = params["createdBy"] = rng.choice(owners)
        seen: list[dict] = []
        began = time.monotonic()
        ended = began
        for _ in range(rng.randint(1, 4)):
            o = client.send("list-courses", "GET", f"{API}/courses?{urllib.parse.urlencode(params)}")
            ended = o.ended
            if not self.check("list-courses", o, {200}, str(params)):
                return
            page = o.payload if isinstance(o.payload, dict) else {}
            items = page.get("data")
            if not isinstance(items, list) or len(items) > limit:
                self.violation("list-page", f"{params}: {o.raw[:200]!r}")
                return
            for item in items:
                self.check_course_item("list-courses", item, o)
                if q is not None and q.lower() not in str(item.get("title", "")).lower():
                    self.violation("list-filter", f"q={q!r} listed title {item.get('title')!r}")
                if created_by is not None and item.get("createdBy") != created_by:
                    self.violation("list-filter", f"createdBy={created_by} listed {item.get('createdBy')}")
            seen.extend(items)
            cursor = page.get("nextCursor")
            if not cursor:
                break
            params["cursor"] = cursor
        keys = [(str(item.get("createdAt")), str(item.get("id"))) for item in seen]
        if len(set(keys)) != len(keys):
            self.violation("paging-repeat", f"{params}: a course listed twice in one walk: {keys}")
        if any(a <= b for a, b in zip(keys, keys[1:])):
            self.violation("paging-order", f"{params}: not newest first: {keys}")
        if q is None and len(keys) > 1:
            self.check_no_skips(keys, created_by, began, ended)

    def check_no_skips(self, keys: list[tuple[str, str]], created_by: str | None, began: float, ended: float) -> None:
        """Every course acknowledged before the walk, not being deleted during it and inside the
        range it covered, was listed."""
        seen = set(keys)
        with self.reg.lock:
            low = bisect.bisect_left(self.reg.by_created, keys[-1])
            high = bisect.bisect_right(self.reg.by_created, keys[0])
            span = self.reg.by_created[low:high]
        for key in span:
            course = self.reg.courses[key[1]]
            if key in seen or course.created_ack > began or vanishing(course, ended) or course.uncertain:
                continue
            if created_by is not None and course.owner != created_by:
                continue
            self.violation("paging-skip", f"course {course.id} ({course.created_at}) missing from a walk of {len(keys)} "
                                          f"courses from {keys[0]} to {keys[-1]}")

    def check_course_item(self, kind: str, item: object, o: Outcome) -> None:
        if not isinstance(item, dict):
            self.violation("course-shape", f"{kind}: {item!r}")
            return
        course = self.reg.courses.get(str(item.get("id")))
        if course is None or course.uncertain:
            return  # created concurrently (not yet acknowledged): nothing known about it
        if course.deleted_at is not None and course.deleted_at <= o.started:
            self.violation("stale-read", f"{kind} shows course {course.id} deleted (acknowledged) "
                                         f"{o.started - course.deleted_at:.3f}s before the request")
        shown = (item.get("title"), item.get("description"))
        if shown not in allowed_versions(course, o.started, o.ended):
            self.violation("stale-read", f"{kind} shows course {course.id} as {shown}, acknowledged versions "
                                         f"{[(v.title, v.description, v.acked is not None) for v in course.versions[-3:]]}")
        if item.get("createdBy") != course.owner:
            self.violation("course-owner", f"{kind} shows course {course.id} created by {item.get('createdBy')}, not {course.owner}")

    def op_list_courses(self, client: SoakClient, rng: random.Random) -> None:
        self.walk_catalog(client, rng)

    def op_get_course(self, client: SoakClient, rng: random.Random) -> None:
        course = self.reg.pick_course(rng, deleted=0.1)
        if course is None:
            return
        o = client.send("get-course", "GET", f"{API}/courses/{course.id}")
        if self.check_course("get-course", course, {200}, o, f"course {course.id}") and o.status == 200:
            self.check_course_item("get-course", o.payload, o)

    def op_create_course(self, client: SoakClient, rng: random.Random, user: UserState) -> None:
        self.create_course(client, "create-course", user, rng)

    def own_course(self, rng: random.Random, user: UserState) -> CourseState | None:
        with self.reg.lock:
            mine = [cid for cid in self.reg.owned[user.id] if not self.reg.courses[cid].uncertain]
            hot = [cid for cid in mine if cid in self.reg.recent]
            pool = hot if hot and rng.random() < 0.5 else mine
            return self.reg.courses[rng.choice(pool)] if pool else None

    def op_update_course(self, client: SoakClient, rng: random.Random, user: UserState, method: str) -> None:
        kind = f"update-course-{method.lower()}"
        course = self.own_course(rng, user)
        if course is None:
            return self.op_create_course(client, rng, user)
        n = self.next_number()
        current = course.versions[-1]
        title, description = current.title, current.description
        body: dict = {}
        roll = rng.random()
        if roll < 0.7 or method == "PUT":
            title = f"{rng.choice(WORDS)} updated {self.tag}-{n}"
            body["title"] = f" {title} " if rng.random() < 0.1 else title
        if roll >= 0.4:
            description = rng.choice((f"Updated {n}", None, "", f"Two\nlines {n}"))
            body["description"] = description
        version = Version(time.monotonic(), None, title, description)
        with self.reg.lock:
            course.versions.append(version)
        o = client.send(kind, method, f"{API}/courses/{course.id}", body, user.token)
        if not self.check(kind, o, {200}, f"own course {course.id} {body}"):
            course.uncertain = True
            return
        version.acked = o.ended
        c = o.payload if isinstance(o.payload, dict) else {}
        if (c.get("id"), c.get("title"), c.get("description")) != (course.id, title, description):
            self.violation("update-answer", f"{method} {course.id} {body}: answered {c}")

    def op_delete_course(self, client: SoakClient, rng: random.Random, user: UserState) -> None:
        course = self.own_course(rng, user)
        if course is None:
            return self.op_create_course(client, rng, user)
        course.delete_sent = time.monotonic()
        o = client.send("delete-course", "DELETE", f"{API}/courses/{course.id}", None, user.token)
        if not self.check("delete-course", o, {204}, f"own course {course.id}"):
            course.uncertain = True
            return
        self.reg.course_deleted(course, o.ended)
        if rng.random() < 0.3:  # read after delete, by the same client: gone at once
            o = client.send("delete-course", "GET", f"{API}/courses/{course.id}")
            self.check("delete-course", o, {404}, f"GET after DELETE {course.id}")

    def foreign_course(self, rng: random.Random, user: UserState) -> CourseState | None:
        for _ in range(5):
            course = self.reg.pick_course(rng, deleted=0.05)
            if course is not None and course.owner != user.id:
                return course
        return None

    def op_foreign_course_write(self, client: SoakClient, rng: random.Random, user: UserState) -> None:
        course = self.foreign_course(rng, user)
        if course is None:
            return
        method = rng.choice(("PUT", "PATCH", "DELETE"))
        body = None if method == "DELETE" else {"title": f"hijacked {self.next_number()}"}
        o = client.send("foreign-course-write", method, f"{API}/courses/{course.id}", body, user.token)
        if not self.check_course("foreign-course-write", course, {403}, o, f"{user.role} {user.id} on {course.id}"):
            course.uncertain = course.uncertain or o.status in (200, 204)

    def enroll_expectation(self, user: UserState, course: CourseState) -> tuple[set[int], str | None]:
        before = user.enrolled.get(course.id)
        return ({200} if before else {201}), before

    def settle_enroll(self, kind: str, user: UserState, course: CourseState, o: Outcome, before: str | None,
                      allowed: set[int]) -> None:
        """Checks and records one enroll answer."""
        if not self.check_course(kind, course, allowed, o, f"user {user.id} course {course.id} enrolled={before}"):
            if o.status in (200, 201) or o.error is not None or (o.status or 0) >= 500:
                user.uncertain = True
            return
        e = o.payload if isinstance(o.payload, dict) else {}
        if o.status != 404 and (e.get("courseId") != course.id or e.get("userId") != user.id or not e.get("id")):
            self.violation("enroll-answer", f"{o.describe()}")
            user.uncertain = True
            return
        if o.status != 404 and before is not None and e["id"] != before:
            self.violation("enroll-again", f"enrolling again in {course.id} answered enrollment {e['id']}, not {before}")
        with self.reg.lock:  # the state first, then the mark that says it is settled
            if o.status != 404:
                user.enrolled[course.id] = e["id"]
                self.reg.members[course.id].add(user.id)
            user.marks[course.id][1] = o.ended

    def op_enroll(self, client: SoakClient, rng: random.Random, user: UserState) -> None:
        course = self.reg.pick_course(rng)
        if course is None:
            return
        allowed, before = self.enroll_expectation(user, course)
        user.marks[course.id] = [time.monotonic(), 0.0]
        o = client.send("enroll", "POST", f"{API}/courses/{course.id}/enroll", None, user.token)
        self.settle_enroll("enroll", user, course, o, before, allowed)

    def enrolled_course(self, rng: random.Random, user: UserState) -> CourseState | None:
        candidates = [cid for cid in user.enrolled if self.reg.courses[cid].deleted_at is None]
        return self.reg.courses[rng.choice(candidates)] if candidates else None

    def op_enroll_again(self, client: SoakClient, rng: random.Random, user: UserState) -> None:
        course = self.enrolled_course(rng, user)
        if course is None:
            return self.op_enroll(client, rng, user)
        before = user.enrolled[course.id]
        user.marks[course.id] = [time.monotonic(), 0.0]
        o = client.send("enroll-again", "POST", f"{API}/courses/{course.id}/enroll", None, user.token)
        self.settle_enroll("enroll-again", user, course, o, before, {200})

    def op_unenroll(self, client: SoakClient, rng: random.Random, user: UserState) -> None:
        course = self.enrolled_course(rng, user)
        if course is None:
            return self.op_unenroll_not_enrolled(client, rng, user)
        user.marks[course.id] = [time.monotonic(), 0.0]
        o = client.send("unenroll", "DELETE", f"{API}/courses/{course.id}/enroll", None, user.token)
        if not self.check_course("unenroll", course, {204}, o, f"user {user.id} course {course.id}"):
            user.uncertain = True
            return
        with self.reg.lock:
            user.enrolled.pop(course.id, None)
            self.reg.members[course.id].discard(user.id)
            user.marks[course.id][1] = o.ended

    def op_unenroll_not_enrolled(self, client: SoakClient, rng: random.Random, user: UserState) -> None:
        course = self.reg.pick_course(rng)
        if course is None or course.id in user.enrolled:
            return
        user.marks[course.id] = [time.monotonic(), 0.0]
        o = client.send("unenroll-not-enrolled", "DELETE", f"{API}/courses/{course.id}/enroll", None, user.token)
        if self.check("unenroll-not-enrolled", o, {404}, f"user {user.id} course {course.id}"):
            user.marks[course.id][1] = o.ended
        else:
            user.uncertain = True

    def walk(self, client: SoakClient, kind: str, path: str, token: str, limit: int,
             allowed: set[int] | None = None, course: CourseState | None = None) -> tuple[list[dict], float, float] | None:
        """Every page of a signed-in list; None when a page was not a 200 (already counted)."""
        items: list[dict] = []
        cursor, began, ended = None, time.monotonic(), 0.0
        for _ in range(100):
            query = f"limit={limit}" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
            o = client.send(kind, "GET", f"{path}?{query}", None, token)
            ended = o.ended
            ok = (self.check_course(kind, course, allowed or {200}, o, path) if course is not None
                  else self.check(kind, o, allowed or {200}, path))
            if not ok or o.status != 200:
                return None
            page = o.payload if isinstance(o.payload, dict) else {}
            if not isinstance(page.get("data"), list) or len(page["data"]) > limit:
                self.violation(f"{kind}-page", f"{path}: {o.raw[:200]!r}")
                return None
            items.extend(page["data"])
            cursor = page.get("nextCursor")
            if not cursor:
                break
        keys = [(str(i.get("enrolledAt")), str(i.get("id"))) for i in items]
        if any(a <= b for a, b in zip(keys, keys[1:])):
            self.violation("paging-order", f"{path}: not newest first: {keys[:6]}")
        return items, began, ended

    def op_my_enrollments(self, client: SoakClient, rng: random.Random, user: UserState) -> None:
        result = self.walk(client, "my-enrollments", f"{API}/users/me/enrollments", user.token, rng.choice((1, 3, 10, 50)))
        if result is None or user.uncertain:
            return
        items, began, ended = result
        listed: dict[str, str] = {}
        for item in items:
            cid = str(item.get("courseId"))
            if cid in listed:
                self.violation("duplicate-enrollment", f"user {user.id} lists course {cid} twice")
            listed[cid] = str(item.get("id"))
            course = self.reg.courses.get(cid)
            if (item.get("course") or {}).get("id") != cid:
                self.violation("enrollment-shape", f"user {user.id}: {item}")
            if course is None:
                self.violation("phantom-enrollment", f"user {user.id} lists unknown course {cid}")
            elif course.deleted_at is not None and course.deleted_at <= began:
                self.violation("orphan-enrollment", f"user {user.id} lists course {cid}, deleted before the listing")
            elif user.enrolled.get(cid) != listed[cid]:
                self.violation("phantom-enrollment", f"user {user.id} lists enrollment {listed[cid]} in {cid}, "
                                                     f"acknowledged: {user.enrolled.get(cid)}")
        for cid, eid in user.enrolled.items():
            if cid not in listed and not vanishing(self.reg.courses[cid], ended):
                self.violation("lost-enrollment", f"user {user.id}: acknowledged enrollment {eid} in {cid} not listed")

    def check_roster(self, course: CourseState, items: list[dict], began: float) -> None:
        with self.reg.lock:  # enrollments and their marks change together under it
            self._check_roster(course, items, began)

    def _check_roster(self, course: CourseState, items: list[dict], began: float) -> None:
        listed: set[str] = set()
        for item in items:
            uid = str(item.get("userId"))
            if uid in listed:
                self.violation("duplicate-enrollment", f"roster of {course.id} lists user {uid} twice")
            listed.add(uid)
            user = self.reg.users.get(uid)
            if user is None:
                self.violation("phantom-enrollment", f"roster of {course.id} lists unknown user {uid}")
                continue
            mark = user.marks.get(course.id)
            settled = mark is not None and 0 < mark[1] <= began and mark[0] <= mark[1]
            if settled and not user.uncertain and user.enrolled.get(course.id) != item.get("id"):
                self.violation("phantom-enrollment", f"roster of {course.id} lists enrollment {item.get('id')} of {uid}, "
                                                     f"acknowledged: {user.enrolled.get(course.id)}")
        for uid in list(self.reg.members[course.id]):
            user = self.reg.users[uid]
            mark = user.marks.get(course.id)
            settled = mark is not None and 0 < mark[1] <= began and mark[0] <= mark[1]
            if settled and not user.uncertain and course.id in user.enrolled and uid not in listed:
                self.violation("lost-enrollment", f"roster of {course.id} misses acknowledged enrollment of {uid}")

    def op_roster(self, client: SoakClient, rng: random.Random, user: UserState) -> None:
        course = self.own_course(rng, user)
        if course is None:
            return self.op_create_course(client, rng, user)
        result = self.walk(client, "roster", f"{API}/courses/{course.id}/enrollments", user.token, rng.choice((2, 10, 50)))
        if result is not None:
            self.check_roster(course, result[0], result[1])

    def op_foreign_roster(self, client: SoakClient, rng: random.Random, user: UserState) -> None:
        course = self.foreign_course(rng, user)
        if course is None:
            return
        o = client.send("foreign-roster", "GET", f"{API}/courses/{course.id}/enrollments", None, user.token)
        self.check_course("foreign-roster", course, {403}, o, f"{user.id} on {course.id}")

    def op_invalid(self, client: SoakClient, rng: random.Random, user: UserState) -> None:
        """One invalid request with its documented status; none may change anything."""
        n = self.next_number()
        fixed = rng.choice([u for u in self.reg.fixed if u.id != user.id])
        unknown = str(uuid.uuid4())
        fresh = f"soak-{self.tag}-{n}-invalid@example.com"
        with self.reg.lock:
            self.reg.email_requests.add(fresh)
            self.reg.title_requests[f"invalid {self.tag}-{n}"] = "invalid"
        probes: list[tuple[str, str, object, str | None, set[int]]] = [
            ("GET", f"{API}/users/me", None, None, {401}),
            ("GET", f"{API}/users/me", None, "abc.def.ghi", {401}),
            ("GET", f"{API}/users/me", None, user.token[:-3] + ("AAA" if not user.token.endswith("AAA") else "BBB"), {401}),
            ("POST", f"{API}/courses", {"title": f"invalid {self.tag}-{n}"}, None, {401}),
            ("GET", f"{API}/courses/not-a-uuid", None, None, {404}),
            ("GET", f"{API}/courses/{unknown}", None, None, {404}),
            ("POST", f"{API}/courses/{unknown}/enroll", None, user.token, {404}),
            ("DELETE", f"{API}/courses/{unknown}/enroll", None, user.token, {404}),
            ("POST", f"{API}/courses/not-a-uuid/enroll", None, user.token, {404}),
            ("GET", f"{API}/courses/{unknown}/enrollments", None, user.token, {404}),
            ("POST", f"{API}/auth/register", {"email": "not an email", "password": "long enough"}, None, {422}),
            ("POST", f"{API}/auth/register", {"email": fresh, "password": "short"}, None, {422}),
            ("POST", f"{API}/auth/register", {"email": fresh, "password": "long enough", "role": "admin"}, None, {422}),
            ("POST", f"{API}/auth/register", {"email": fixed.email.upper(), "password": "long enough"}, None, {409}),
            ("POST", f"{API}/auth/register", RawBody(b'{"email": "x@example.com", "pass'), None, {400}),
            ("POST", f"{API}/auth/register", RawBody(b'[1, 2]'), None, {400}),
            ("POST", f"{API}/auth/register", {"email": 5, "password": ["x"]}, None, {422}),
            ("POST", f"{API}/auth/login", {"email": user.email, "password": user.password + "x"}, None, {401}),
            ("POST", f"{API}/auth/login", {"email": f"nobody-{n}@example.com", "password": "long enough"}, None, {401}),
            ("POST", f"{API}/auth/login", {}, None, {422}),
            ("GET", f"{API}/courses?limit={rng.choice(('0', '101', 'abc', '-1'))}", None, None, {422}),
            ("GET", f"{API}/courses?cursor=garbage{n}", None, None, {400}),
            ("GET", f"{API}/courses?createdBy=nope", None, None, {422}),
            ("GET", f"{API}/courses?q={'q' * 201}", None, None, {422}),
            ("GET", f"{API}/users/me/enrollments?cursor=garbage{n}", None, user.token, {400}),
            ("GET", f"{API}/users/me/enrollments?limit=0", None, user.token, {422}),
            ("PUT", f"{API}/users/me", {"email": fresh}, user.token, {403}),
            ("PUT", f"{API}/users/me", {"password": "new password", "currentPassword": user.password + "x"}, user.token, {403}),
            ("PUT", f"{API}/users/me", {"name": "n" * 101}, user.token, {422}),
            ("PUT", f"{API}/users/me", {"email": "not an email", "currentPassword": user.password}, user.token, {422}),
            ("PUT", f"{API}/users/me", {"name": 5}, user.token, {422}),
            ("PUT", f"{API}/users/me", RawBody(b"[]"), user.token, {400}),
            ("PUT", f"{API}/users/me", RawBody(b"name=x", "text/plain"), user.token, {415}),
            ("GET", f"{API}/no-such-route", None, None, {404}),
        ]
        if not fixed.id == user.id:
            probes.append(("PUT", f"{API}/users/me", {"email": fixed.email, "currentPassword": user.password}, user.token, {409}))
        if user.role == "student":
            probes.append(("POST", f"{API}/courses", {"title": f"invalid {self.tag}-{n}"}, user.token, {403}))
        else:
            probes += [
                ("POST", f"{API}/courses", {"title": "   "}, user.token, {422}),
                ("POST", f"{API}/courses", {"title": "t" * 201}, user.token, {422}),
                ("POST", f"{API}/courses", {"title": 7, "description": ["x"]}, user.token, {422}),
                ("POST", f"{API}/courses", RawBody(b"{"), user.token, {400}),
            ]
            course = self.own_course(rng, user)
            if course is not None:
                probes += [
                    ("PATCH", f"{API}/courses/{course.id}", {"title": ""}, user.token, {422}),
                    ("PUT", f"{API}/courses/{course.id}", {"title": None}, user.token, {422}),
                    ("PATCH", f"{API}/courses/{course.id}", {"description": "d" * 10_001}, user.token, {422}),
                ]
        if rng.random() < 0.02:  # more than MAX_BODY_BYTES, on a connection of its own
            big = RawBody(json.dumps({"title": "x" * (1024 * 1024 + 10)}).encode())
            probes = [("POST", f"{API}/courses", big, user.token if user.role == "instructor" else None, {413})]
        method, path, body, token, allowed = rng.choice(probes)
        if isinstance(body, RawBody) and len(body.data) > 1024 * 1024:
            own = SoakClient(self.args.url, timeout=self.args.client_timeout)
            o = own.send("invalid", method, path, body, token)
            own.close()
            if o.error is not None and ("Broken pipe" in o.error or "reset" in o.error.lower()):
                # The server refused the body (413) and closed before reading all of it.
                o.error, o.status = None, 413
        else:
            o = client.send("invalid", method, path, body, token)
        shown = body if not isinstance(body, RawBody) else body.data[:40]
        self.check("invalid", o, allowed, f"{method} {path[:80]} {str(shown)[:80]}")

    # -- contention: several clients at once on one course

    def parallel(self, clients: list[SoakClient], jobs: list[tuple]) -> list[Outcome]:
        """Sends one request per job, all released together by a barrier."""
        barrier = threading.Barrier(len(jobs))
        results: list[Outcome | None] = [None] * len(jobs)

        def run(index: int) -> None:
            op, method, path, body, token = jobs[index]
            try:
                barrier.wait(timeout=30)
            except threading.BrokenBarrierError:
                pass
            results[index] = clients[index].send(op, method, path, body, token)

        threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(jobs))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results  # type: ignore[return-value]

    def extra_clients(self, pool: list[SoakClient], count: int) -> list[SoakClient]:
        while len(pool) < count:
            pool.append(SoakClient(self.args.url, timeout=self.args.client_timeout))
        return pool[:count]

    def op_contend_enroll(self, client: SoakClient, rng: random.Random, pool: list[SoakClient]) -> None:
        """Different students enroll in one hot course at once, one of them twice: one row each,
        exactly one 201 for the student who sent two."""
        with self.reg.lock:
            hot = [cid for cid in self.reg.recent if self.reg.courses[cid].delete_sent is None]
        if not hot:
            return
        course = self.reg.courses[rng.choice(hot)]
        students = self.reg.checkout_many(rng, "student", rng.randint(3, 6), {course.owner})
        try:
            if len(students) < 2:
                return
            path = f"{API}/courses/{course.id}/enroll"
            jobs = [("contend-enroll", "POST", path, None, s.token) for s in students]
            jobs.append(("contend-enroll", "POST", path, None, students[0].token))
            expectations = [self.enroll_expectation(s, course) for s in students]
            for s in students:
                s.marks[course.id] = [time.monotonic(), 0.0]
            outcomes = self.parallel(self.extra_clients(pool, len(jobs)), jobs)
            twice = (outcomes[0], outcomes[-1])
            allowed0, before0 = expectations[0]
            statuses = sorted(o.status or 0 for o in twice)
            if statuses == [201, 201]:
                self.violation("duplicate-enrollment", f"two 201 for one student enrolling twice at once in {course.id}: "
                                                       f"{[o.describe() for o in twice]}")
            elif 404 not in statuses and all(o.error is None for o in twice):
                ids = {(o.payload or {}).get("id") for o in twice if isinstance(o.payload, dict)}
                want = [200, 200] if before0 else [200, 201]
                if statuses != want or len(ids) != 1:
                    self.violation("duplicate-enrollment", f"one student enrolling twice at once in {course.id}: "
                                                           f"{[o.describe() for o in twice]}, expected {want} with one id")
            with self.lock:
                self.races["same student twice at once: " + "+".join(str(s) for s in statuses)] += 1
            # The second answer of the same student may be the 201 or the 200: record the 201 first.
            first, second = sorted(twice, key=lambda o: 0 if o.status == 201 else 1)
            self.settle_enroll("contend-enroll", students[0], course, first, before0, {200, 201})
            self.check_course("contend-enroll", course, {200, 201}, second, "the same student again")
            for student, (allowed, before), o in zip(students[1:], expectations[1:], outcomes[1:-1]):
                self.settle_enroll("contend-enroll", student, course, o, before, allowed)
            for s in students:
                if s.marks[course.id][1] == 0.0:
                    s.marks[course.id][1] = time.monotonic()
            owner = self.checkout_user(course.owner)  # None when another client drives the owner
            if owner is not None:
                try:
                    result = self.walk(client, "contend-enroll", f"{API}/courses/{course.id}/enrollments", owner.token, 50,
                                       {200}, course)
                    if result is not None:
                        self.check_roster(course, result[0], result[1])
                finally:
                    self.reg.release(owner)
        finally:
            self.reg.release(*students)

    def checkout_user(self, uid: str) -> UserState | None:
        with self.reg.lock:
            user = self.reg.users.get(uid)
            if user is None or user.busy:
                return None
            user.busy = True
            return user

    def op_contend_delete(self, client: SoakClient, rng: random.Random, pool: list[SoakClient], owner: UserState) -> None:
        """Students enroll in a course while its owner deletes it: the delete is 204, each enroll
        201, 200 or 404, and afterwards neither the course nor any enrollment in it remains."""
        course = self.own_course(rng, owner)
        if course is None:
            return self.op_create_course(client, rng, owner)
        students = self.reg.checkout_many(rng, "student", rng.randint(2, 5), {owner.id})
        try:
            path = f"{API}/courses/{course.id}"
            jobs = [("contend-delete", "POST", f"{path}/enroll", None, s.token) for s in students]
            jobs.append(("contend-delete", "DELETE", path, None, owner.token))
            expectations = [self.enroll_expectation(s, course) for s in students]
            for s in students:
                s.marks[course.id] = [time.monotonic(), 0.0]
            course.delete_sent = time.monotonic()
            outcomes = self.parallel(self.extra_clients(pool, len(jobs)), jobs)
            delete = outcomes[-1]
            if not self.check("contend-delete", delete, {204}, f"own course {course.id} while enrolling"):
                course.uncertain = True
            else:
                self.reg.course_deleted(course, delete.ended)
            for student, (allowed, before), o in zip(students, expectations, outcomes[:-1]):
                self.settle_enroll("contend-delete", student, course, o, before, allowed)
            if course.deleted_at is not None:
                o = client.send("contend-delete", "GET", f"{API}/courses/{course.id}/enrollments", None, owner.token)
                self.check("contend-delete", o, {404}, f"roster after deleting {course.id}")
                if students:
                    o = client.send("contend-delete", "POST", f"{API}/courses/{course.id}/enroll", None, students[0].token)
                    self.check("contend-delete", o, {404}, f"enroll after deleting {course.id}")
        finally:
            self.reg.release(*students)

    # -- the load

    def one_operation(self, client: SoakClient, rng: random.Random, pool: list[SoakClient], kinds: list[str],
                      weights: list[float]) -> None:
        kind = rng.choices(kinds, weights)[0]
        anonymous = {"register": self.op_register, "list-courses": self.op_list_courses, "get-course": self.op_get_course}
        if kind in anonymous:
            anonymous[kind](client, rng)
            self.count_op(kind)
            return
        if kind == "contend-enroll":
            self.op_contend_enroll(client, rng, pool)
            self.count_op(kind)
            return
        instructor_only = kind in ("create-course", "update-course-put", "update-course-patch", "delete-course",
                                   "roster", "contend-delete")
        user = self.reg.checkout(rng, "instructor" if instructor_only else None)
        if user is None:  # everyone busy: a read instead
            self.op_get_course(client, rng)
            self.count_op("get-course")
            return
        try:
            handlers = {
                "login": self.op_login, "me": self.op_me, "me-name": self.op_me_name, "me-email": self.op_me_email,
                "me-password": self.op_me_password, "create-course": self.op_create_course,
                "update-course-put": lambda c, r, u: self.op_update_course(c, r, u, "PUT"),
                "update-course-patch": lambda c, r, u: self.op_update_course(c, r, u, "PATCH"),
                "delete-course": self.op_delete_course, "foreign-course-write": self.op_foreign_course_write,
                "enroll": self.op_enroll, "enroll-again": self.op_enroll_again, "unenroll": self.op_unenroll,
                "unenroll-not-enrolled": self.op_unenroll_not_enrolled, "my-enrollments": self.op_my_enrollments,
                "roster": self.op_roster, "foreign-roster": self.op_foreign_roster, "invalid": self.op_invalid,
                "contend-delete": lambda c, r, u: self.op_contend_delete(c, r, pool, u),
            }
            handlers[kind](client, rng, user)
            self.count_op(kind)
        finally:
            self.reg.release(user)

    def worker(self, seed: int) -> None:
        rng = random.Random(seed)
        client = SoakClient(self.args.url, timeout=self.args.client_timeout)
        pool: list[SoakClient] = []
        kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
        while not self.stop.is_set():
            try:
                self.one_operation(client, rng, pool, kinds, weights)
            except Exception as error:  # a bug of this driver must not pass as a quiet run
                self.violation("driver-error", f"{error.__class__.__name__}: {error}")
                import traceback
                traceback.print_exc()
                time.sleep(0.1)
        client.close()
        for extra in pool:
            extra.close()

    def sampler(self) -> None:
        """The server's VmRSS once a second, from the load's start to its end."""
        while not self.stop.is_set():
            try:
                with open(f"/proc/{self.args.pid}/status") as status:
                    for line in status:
                        if line.startswith("VmRSS:"):
                            self.rss.append((time.monotonic() - self.load_began, int(line.split()[1]) * 1024))
                            break
            except OSError:
                pass
            self.stop.wait(1.0)

    # -- afterwards

    def verify_api(self) -> dict:
        """The whole catalog, paged through the API, is exactly the live courses; changed
        passwords and emails sign in."""
        client = SoakClient(self.args.url, timeout=self.args.client_timeout)
        listed: list[str] = []
        cursor = None
        for _ in range(10_000):
            query = "limit=100" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
            o = client.send("verify", "GET", f"{API}/courses?{query}")
            if not self.check("verify", o, {200}, "final catalog walk"):
                break
            listed.extend(str(item.get("id")) for item in o.payload["data"])
            cursor = o.payload.get("nextCursor")
            if not cursor:
                break
        live = {cid for cid, c in self.reg.courses.items() if c.deleted_at is None and not c.uncertain}
        uncertain = {cid for cid, c in self.reg.courses.items() if c.uncertain}
        if len(listed) != len(set(listed)):
            self.violation("paging-repeat", f"the final catalog walk lists {len(listed) - len(set(listed))} course(s) twice")
        missing, extra = live - set(listed), set(listed) - live - uncertain
        if missing:
            self.violation("lost-course", f"{len(missing)} live course(s) missing from the catalog, e.g. {sorted(missing)[:3]}")
        if extra:
            self.violation("stale-read", f"{len(extra)} course(s) listed that are deleted or unknown, e.g. {sorted(extra)[:3]}")
        signed_in = 0
        changed = [u for u in self.reg.users.values() if (u.password_changed or u.email_changed) and not u.uncertain]
        for user in changed[:200]:
            o = client.send("verify", "POST", f"{API}/auth/login", {"email": user.email, "password": user.password})
            if self.check("verify", o, {200}, f"final login of {user.id} (changed password/email)"):
                signed_in += 1
        client.close()
        return {"catalogListed": len(listed), "liveCourses": len(live), "changedAccountsSignedIn": signed_in,
                "changedAccounts": len(changed)}

    def rows(self, sql: str) -> list[dict]:
        return [json.loads(line) for line in self.pg.query(sql)]

    def verify_database(self) -> dict:
        """The acknowledged state, exactly, in PostgreSQL."""
        duplicates = int(self.pg.query("select count(*) from (select 1 from enrollments group by user_id, course_id "
                                       "having count(*) > 1) d")[0])
        if duplicates:
            self.violation("duplicate-enrollment", f"{duplicates} (user_id, course_id) pair(s) stored more than once")
        orphans = int(self.pg.query("select count(*) from enrollments e where not exists (select 1 from users u where "
                                    "u.id = e.user_id) or not exists (select 1 from courses c where c.id = e.course_id)")[0])
        if orphans:
            self.violation("orphan-enrollment", f"{orphans} enrollment(s) whose user or course is missing")
        orphan_courses = int(self.pg.query("select count(*) from courses c where not exists "
                                           "(select 1 from users u where u.id = c.created_by)")[0])
        if orphan_courses:
            self.violation("orphan-course", f"{orphan_courses} course(s) whose creator is missing")

        users = {r["id"]: r for r in self.rows("select json_build_object('id', id, 'email', email, 'name', name, "
                                               "'role', role) from users")}
        lost_users = wrong_users = 0
        for user in self.reg.users.values():
            row = users.get(user.id)
            if row is None:
                lost_users += 1
                self.violation("lost-user", f"acknowledged registration {user.id} ({user.email}) not stored")
            elif not user.uncertain and (row["email"], row["name"], row["role"]) != (user.email, user.name, user.role):
                wrong_users += 1
                self.violation("lost-update", f"user {user.id} stored as {(row['email'], row['name'], row['role'])}, "
                                              f"last acknowledged {(user.email, user.name, user.role)}")
        unexplained_users = [r for uid, r in users.items() if uid not in self.reg.users]
        for row in unexplained_users[:20]:
            note = " (its registration had an unexpected answer)" if row["email"] in self.reg.email_requests else ""
            self.violation("unexplained-row", f"user {row['id']} ({row['email']}) stored, never acknowledged{note}")

        courses = {r["id"]: r for r in self.rows("select json_build_object('id', id, 'title', title, 'description', "
                                                 "description, 'createdBy', created_by) from courses")}
        lost_courses = wrong_courses = resurrected = 0
        for course in self.reg.courses.values():
            row = courses.get(course.id)
            if course.uncertain:
                continue
            if course.deleted_at is not None:
                if row is not None:
                    resurrected += 1
                    self.violation("deleted-course-present", f"course {course.id} deleted (204) but stored")
                continue
            if row is None:
                lost_courses += 1
                self.violation("lost-course", f"acknowledged course {course.id} not stored")
                continue
            last = course.versions[-1]
            if (row["title"], row["description"], row["createdBy"]) != (last.title, last.description, course.owner):
                wrong_courses += 1
                self.violation("lost-update", f"course {course.id} stored as {(row['title'], row['description'])}, last "
                                              f"acknowledged {(last.title, last.description)}")
        for row in [r for cid, r in courses.items() if cid not in self.reg.courses][:20]:
            note = " (its create had an unexpected answer)" if row["title"] in self.reg.title_requests else ""
            self.violation("unexplained-row", f"course {row['id']} {row['title']!r} stored, never acknowledged{note}")

        enrollments = {(r["userId"], r["courseId"]): r["id"] for r in self.rows(
            "select json_build_object('id', id, 'userId', user_id, 'courseId', course_id) from enrollments")}
        expected: dict[tuple[str, str], str] = {}
        skipped: set[tuple[str, str]] = set()
        for user in self.reg.users.values():
            for cid, eid in user.enrolled.items():
                course = self.reg.courses[cid]
                if user.uncertain or course.uncertain:
                    skipped.add((user.id, cid))
                elif course.deleted_at is None:
                    expected[(user.id, cid)] = eid
        lost = [key for key in expected if enrollments.get(key) != expected[key]]
        for key in lost[:20]:
            self.violation("lost-enrollment", f"acknowledged enrollment {expected[key]} of user {key[0]} in {key[1]} "
                                              f"stored as {enrollments.get(key)}")
        extra = [key for key in enrollments if key not in expected and key not in skipped
                 and not self.reg.users.get(key[0], UserState("", "", "", None, "", "")).uncertain]
        for key in extra[:20]:
            course = self.reg.courses.get(key[1])
            state = "deleted course" if course and course.deleted_at else "never acknowledged or unenrolled"
            self.violation("unexplained-row", f"enrollment {enrollments[key]} of user {key[0]} in {key[1]} stored ({state})")
        if len(lost) > 20 or len(extra) > 20:
            self.violation("summary", f"{len(lost)} enrollment(s) lost and {len(extra)} unexplained in all")
        return {"users": len(users), "acknowledgedUsers": len(self.reg.users), "courses": len(courses),
                "liveCourses": sum(1 for c in self.reg.courses.values() if c.deleted_at is None),
                "deletedCourses": sum(1 for c in self.reg.courses.values() if c.deleted_at is not None),
                "enrollments": len(enrollments), "expectedEnrollments": len(expected),
                "duplicates": duplicates, "orphans": orphans, "lostUsers": lost_users, "wrongUsers": wrong_users,
                "lostCourses": lost_courses, "wrongCourses": wrong_courses, "resurrectedCourses": resurrected,
                "lostEnrollments": len(lost), "unexplainedEnrollments": len(extra)}

    def memory_verdict(self) -> dict:
        """Whether the server's memory keeps growing. The first 25% of the run is warm-up and
        ignored (connection pool, allocator arenas, the catalog cache of 1,000 entries fill). The
        run is cut in thirds; the robust peak of a third is the 90th percentile of its samples
        (one busy second, say several 1 MiB bodies buffered at once, is not a trend). The check
        fails when the last third's robust peak exceeds the middle third's by more than 16 MiB:
        bounded structures have filled by the middle third, and the debug build moves by at most
        ~3 MiB between the thirds there, so 16 MiB is far above noise, while a leak of 16 MiB per
        third (24 MiB/min in a 120 s run, 16 MiB/min in 180 s; about 1 KiB per request at the
        rates here) fails. A fixed amount rather than a percentage: a percentage of the RSS grows
        with the leak it should catch (20% let 30 MiB/min pass in 120 s). Longer runs catch
        slower leaks."""
        total = self.load_seconds

        def robust_peak(samples: list[int]) -> int:
            ordered = sorted(samples)
            return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))] if ordered else 0

        warm = [b for t, b in self.rss if t >= total * 0.25]
        middle = [b for t, b in self.rss if total / 3 <= t < total * 2 / 3]
        last = [b for t, b in self.rss if t >= total * 2 / 3]
        result = {"samples": len(self.rss), "peak": max((b for _, b in self.rss), default=0),
                  "warm": warm[0] if warm else 0, "end": self.rss[-1][1] if self.rss else 0,
                  "middlePeak": robust_peak(middle), "lastPeak": robust_peak(last)}
        result["tolerance"] = MEMORY_TOLERANCE
        points = [(t, b) for t, b in self.rss if t >= total * 0.25]
        if len(points) >= 2:  # for the report only: a least-squares trend after the warm-up
            mt = sum(t for t, _ in points) / len(points)
            mb = sum(b for _, b in points) / len(points)
            var = sum((t - mt) ** 2 for t, _ in points)
            result["slopeMiBPerMinute"] = round(sum((t - mt) * (b - mb) for t, b in points) / var * 60 / MIB, 2) if var else 0
        result["growing"] = bool(middle and last and result["lastPeak"] > result["middlePeak"] + result["tolerance"])
        if len(middle) < 3 or len(last) < 3:
            self.violation("memory", f"too few RSS samples ({len(self.rss)}) to judge the memory trend")
        elif result["growing"]:
            self.violation("memory", f"RSS keeps growing: the last third's peak {result['lastPeak'] / MIB:.1f} MiB > the "
                                     f"middle third's {result['middlePeak'] / MIB:.1f} MiB + {result['tolerance'] / MIB:.1f} MiB "
                                     f"(trend {result.get('slopeMiBPerMinute')} MiB/min after the warm-up)")
        return result

    def run(self) -> int:
        try:
            self.seed()
        except RuntimeError as error:
            driver_say(f"setup failed: {error}")
            return 2
        self.load_began = time.monotonic()
        threads = [threading.Thread(target=self.worker, args=(n,), daemon=True) for n in range(self.args.clients)]
        sampler = threading.Thread(target=self.sampler, daemon=True)
        sampler.start()
        for thread in threads:
            thread.start()
        driver_say(f"{self.args.clients} clients for {self.args.seconds:.0f}s against {self.args.url} (pid {self.args.pid})")
        next_progress = self.load_began + 15
        while time.monotonic() - self.load_began < self.args.seconds:
            time.sleep(0.2)
            if time.monotonic() >= next_progress:
                next_progress += 15
                rss = self.rss[-1][1] / MIB if self.rss else 0
                driver_say(f"{time.monotonic() - self.load_began:.0f}s: {sum(self.ops.values()):,} operations, "
                           f"{self.requests:,} requests, {len(self.reg.users):,} users, {len(self.reg.live):,} live courses, "
                           f"RSS {rss:.1f} MiB, {self.server_errors} 5xx, {self.unexpected} unexpected, "
                           f"{self.violations} violations")
        self.stop.set()
        self.load_seconds = time.monotonic() - self.load_began
        for thread in threads:
            thread.join(timeout=self.args.client_timeout + 5)
        hung = [t for t in threads if t.is_alive()]
        if hung:
            self.violation("driver", f"{len(hung)} client(s) still waiting {self.args.client_timeout + 5:.0f}s after the end")
        sampler.join(timeout=5)
        memory = self.memory_verdict()
        api: dict = {}
        database: dict = {}
        try:
            api = self.verify_api()
            database = self.verify_database()
        except Exception as error:  # psql failing, a malformed answer: the run cannot pass
            self.violation("verification", f"{error.__class__.__name__}: {error}")
        if self.start_time is None or process_start_time(self.args.pid) != self.start_time:
            self.violation("process", f"the server (pid {self.args.pid}) is not the process started at first")
        report = {
            "seconds": round(self.load_seconds, 1), "clients": self.args.clients,
            "operations": sum(self.ops.values()), "byKind": dict(self.ops.most_common()),
            "requests": self.requests, "statuses": dict(sorted(self.statuses.items())),
            "serverErrors": self.server_errors, "unanswered": self.unanswered, "unexpected": self.unexpected,
            "unexpectedByKind": dict(self.unexpected_by_kind), "violations": self.violations,
            "violationsByKind": dict(self.violations_by_kind), "races": dict(self.races.most_common()),
            "maxLatency": round(self.max_latency, 3),
            "memory": memory, "rssSamples": [[round(t, 1), b // 1024] for t, b in self.rss],
            "api": api, "database": database, "details": self.details,
        }
        with open(self.args.report, "w") as out:
            json.dump(report, out, indent=2)
        driver_say(f"operations by kind: {', '.join(f'{k} {v:,}' for k, v in self.ops.most_common())}")
        driver_say(f"statuses: {', '.join(f'{k}x{v:,}' for k, v in sorted(self.statuses.items()))}; max latency "
                   f"{self.max_latency:.2f}s")
        driver_say(f"races: {', '.join(f'{k} x{v:,}' for k, v in self.races.most_common())}")
        driver_say(f"database: {database}")
        driver_say(f"memory: peak {memory['peak'] / MIB:.1f} MiB; robust peak of the middle third "
                   f"{memory['middlePeak'] / MIB:.1f} MiB, of the last third {memory['lastPeak'] / MIB:.1f} MiB "
                   f"(tolerance {memory['tolerance'] / MIB:.1f} MiB), "
                   f"trend after warm-up {memory.get('slopeMiBPerMinute')} MiB/min")
        failed = self.server_errors or self.unanswered or self.unexpected or self.violations
        return 1 if failed else 0


def cmd_run(args: argparse.Namespace) -> int:
    # db_fault_driver's Postgres needs only psql here (no pg_ctl).
    args.as_pg, args.pg_data, args.pg_log, args.pg_opts = "", "", "", ""
    return Soak(args).run()


def cmd_summary(args: argparse.Namespace) -> int:
    """The body of the one summary line, from a run's report."""
    with open(args.report) as report_file:
        r = json.load(report_file)
    by_kind = r["byKind"]
    groups = ", ".join(f"{name} {sum(by_kind.get(k, 0) for k in kinds):,}" for name, kinds in GROUPS.items())
    m = r["memory"]
    races = r["races"].get("404 while the course was being deleted", 0)
    print(f"{r['operations']:,} operations ({groups}; {r['requests']:,} requests) in {r['seconds']:.0f} s "
          f"with {r['clients']} clients, {r['serverErrors']} 5xx, {r['unanswered']} unanswered, "
          f"{r['unexpected']} unexpected statuses ({races:,} delete races allowed), {r['violations']} invariant violations, "
          f"peak RSS {m['peak'] / MIB:.0f} MiB (warm {m['warm'] / MIB:.0f} → end {m['end'] / MIB:.0f} MiB)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run")
    p.add_argument("--url", required=True, help="the instance, http://127.0.0.1:PORT")
    p.add_argument("--pid", type=int, required=True, help="the instance's process id (RSS from /proc)")
    p.add_argument("--seconds", type=float, default=120)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--seed-instructors", type=int, default=6)
    p.add_argument("--seed-students", type=int, default=16)
    p.add_argument("--client-timeout", type=float, default=30, help="a request unanswered this long has hung")
    p.add_argument("--pg-bin", required=True, help="folder of psql")
    p.add_argument("--pg-port", type=int, required=True)
    p.add_argument("--report", required=True, help="JSON results are written here")
    p.set_defaults(run=cmd_run)
    p = sub.add_parser("summary")
    p.add_argument("report")
    p.set_defaults(run=cmd_summary)
    args = parser.parse_args()
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
