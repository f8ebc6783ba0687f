#!/usr/bin/env python3
"""What the HTTP layer alone costs: opencourse against two servers that send the responses
opencourse sent, byte for byte (captured here first), with nothing else to do. FloorNIO is
SwiftNIO's HTTP/1 pipeline with a synchronous handler; FloorHummingbird is Hummingbird 2 with one
route per response and no middleware. Servers take turns (A B C A B C ...), each under
`wrk -t2 -c64` per scenario; the table gives requests/s and the server's CPU per request
(user + system time of its whole session, from /proc).

Usage: floor.py --opencourse BIN --floor-bin DIR [--rounds 3] [--seconds 10]
"""
import argparse, json, os, re, signal, subprocess, sys, tempfile, time, urllib.request

SCENARIOS = {"health": "/health", "get": None, "list": "/api/v1/courses?limit=20"}
TICKS = os.sysconf("SC_CLK_TCK")


def session_cpu_seconds(sid):
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:
            total += int(fields[11]) + int(fields[12])
    return total / TICKS


def start(command, env, port, log):
    process = subprocess.Popen(command, env={**os.environ, **env, "PORT": str(port)},
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    for _ in range(150):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
            return process
        except OSError:
            if process.poll() is not None:
                sys.exit(f"floor: {command[0]} exited with {process.returncode}; see {log.name}")
            time.sleep(0.1)
    stop(process)
    sys.exit(f"floor: {command[0]} did not answer /health; see {log.name}")


def stop(process):
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def call(port, method, path, body=None, token=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = "Bearer " + token
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1{path}", method=method, headers=headers,
                                     data=None if body is None else json.dumps(body).encode())
    return json.load(urllib.request.urlopen(request))


def capture(port, folder):
    """Seeds a page of courses shaped like compare.py's, then keeps the raw responses."""
    credentials = {"email": "floor@example.com", "password": "correct horse battery staple"}
    call(port, "POST", "/auth/register", {**credentials, "role": "instructor"})
    token = call(port, "POST", "/auth/login", credentials)["accessToken"]
    words = "alpha beta gamma delta systems design data network compiler theory practice algebra".split()
    ids = [call(port, "POST", "/courses", {
        "title": f"Course {k:05d}: {words[k % 12].title()} {words[(k * 5) % 12].title()}",
        "description": " ".join(words[(k + i) % 12] for i in range(34)) + ".",
    }, token)["id"] for k in range(25)]
    SCENARIOS["get"] = f"/api/v1/courses/{ids[3]}"
    for name, path in SCENARIOS.items():
        raw = subprocess.run(["curl", "-si", f"http://127.0.0.1:{port}{path}"], check=True, capture_output=True).stdout
        open(os.path.join(folder, f"{name}.http"), "wb").write(raw)


def measure(process, port, path, seconds):
    url = f"http://127.0.0.1:{port}{path}"
    subprocess.run(["wrk", "-t2", "-c64", "-d2s", url], check=True, capture_output=True)
    before = session_cpu_seconds(process.pid)
    out = subprocess.run(["wrk", "-t2", "-c64", f"-d{seconds}s", url], check=True, capture_output=True, text=True).stdout
    cpu = session_cpu_seconds(process.pid) - before
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "us": cpu * 1e6 / requests, "errors": bool(errors)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--opencourse", required=True)
    parser.add_argument("--floor-bin", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--port", type=int, default=18090)
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="http-floor-")
    log = open(os.path.join(work, "servers.log"), "ab")
    env = {"DATABASE_URL": f"sqlite:{work}/opencourse.sqlite", "LOG_LEVEL": "warning", "RATE_LIMIT_RPS": "0",
           "JWT_SECRET": "http-floor-" + "x" * 32, "BCRYPT_COST": "8", "SHUTDOWN_DRAIN_SECONDS": "0"}
    servers = {
        "FloorNIO": [os.path.join(args.floor_bin, "FloorNIO")],
        "FloorHummingbird": [os.path.join(args.floor_bin, "FloorHummingbird")],
        "opencourse": [args.opencourse, "serve"],
    }
    server = start(servers["opencourse"], env, args.port, log)
    try:
        capture(args.port, work)
    finally:
        stop(server)
    env["FLOOR_RESPONSES"] = work

    results = {(name, scenario): [] for name in servers for scenario in SCENARIOS}
    for round_ in range(1, args.rounds + 1):
        for name, command in servers.items():
            server = start(command, env, args.port, log)
            try:
                for scenario, path in SCENARIOS.items():
                    result = measure(server, args.port, path, args.seconds)
                    results[(name, scenario)].append(result)
                    print(f"round {round_} {name:16} {scenario:6} {result['rps']:9,.0f} req/s "
                          f"{result['us']:6.1f} us/request{'  ERRORS' if result['errors'] else ''}", flush=True)
            finally:
                stop(server)

    print(f"\n| scenario | server | req/s per round | server CPU µs per request |\n|---|---|---|---|")
    for scenario in SCENARIOS:
        for name in servers:
            runs = results[(name, scenario)]
            rates = " / ".join(f"{r['rps']:,.0f}" for r in runs)
            costs = " / ".join(f"{r['us']:.0f}" for r in runs)
            print(f"| {scenario} | {name} | {rates} | {costs} |")
    print(f"\nresponses and logs: {work}")
    return 3 if any(r["errors"] for runs in results.values() for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
