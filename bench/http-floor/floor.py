#!/usr/bin/env python3
"""What the HTTP layer alone costs: opencourse against two servers that send the responses
opencourse sent, byte for byte (captured here first), with nothing else to do. FloorNIO is
SwiftNIO's HTTP/1 pipeline with a synchronous handler; FloorHummingbird is Hummingbird 2 with one
route per response and no middleware. Servers take turns (A B C A B C ...), each under
`wrk -t2 -c64` per scenario; the table gives requests/s and the server's CPU per request
(user + system time of its process tree, from /proc).

Usage: floor.py --opencourse BIN --floor-bin DIR [--rounds 3] [--seconds 10]
"""
import argparse, os, re, subprocess, sys, tempfile, time

# The process, HTTP and tool helpers of the benchmark itself.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bench import BenchError, cpu_delta, cpu_ticks, ensure_wrk, free_port, http_call, kill_tree, proc_table, tail  # noqa: E402

SCENARIOS = {"health": "/health", "get": None, "list": "/api/v1/courses?limit=20"}
TICKS = os.sysconf("SC_CLK_TCK")


def start(command, env, port, log):
    process = subprocess.Popen(command, env={**os.environ, **env, "PORT": str(port)}, stdin=subprocess.DEVNULL,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 15
    while time.time() < deadline:
        if process.poll() is not None:
            break
        try:
            if http_call(port, "GET", "/health", timeout=1)[0] == 200:
                return process
        except OSError:
            pass
        time.sleep(0.1)
    kill_tree(process.pid)
    raise BenchError(f"{command[0]} did not answer GET /health.\n--- {log.name} ---\n{tail(log.name)}")


def call(port, method, path, body=None, token=None):
    status, answer = http_call(port, method, "/api/v1" + path, body, token)
    if status not in (200, 201):
        raise BenchError(f"{method} {path}: {status} {answer}")
    return answer


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


def measure(wrk, process, port, path, seconds):
    url = f"http://127.0.0.1:{port}{path}"
    subprocess.run([wrk, "-t2", "-c64", "-d2s", url], check=True, capture_output=True)
    before = cpu_ticks(process.pid, proc_table())
    out = subprocess.run([wrk, "-t2", "-c64", f"-d{seconds}s", url], check=True, capture_output=True, text=True).stdout
    cpu = cpu_delta(before, cpu_ticks(process.pid, proc_table())) / TICKS
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
    args = parser.parse_args()
    wrk = ensure_wrk()
    port = free_port()

    work = tempfile.mkdtemp(prefix="http-floor-")
    log = open(os.path.join(work, "servers.log"), "ab")
    env = {"DATABASE_URL": f"sqlite:{work}/opencourse.sqlite", "LOG_LEVEL": "warning", "RATE_LIMIT_RPS": "0",
           "JWT_SECRET": "http-floor-" + "x" * 32, "BCRYPT_COST": "8", "SHUTDOWN_DRAIN_SECONDS": "0"}
    servers = {
        "FloorNIO": [os.path.join(args.floor_bin, "FloorNIO")],
        "FloorHummingbird": [os.path.join(args.floor_bin, "FloorHummingbird")],
        "opencourse": [args.opencourse, "serve"],
    }
    server = start(servers["opencourse"], env, port, log)
    try:
        capture(port, work)
    finally:
        kill_tree(server.pid)
    env["FLOOR_RESPONSES"] = work

    results = {(name, scenario): [] for name in servers for scenario in SCENARIOS}
    for round_ in range(1, args.rounds + 1):
        for name, command in servers.items():
            server = start(command, env, port, log)
            try:
                for scenario, path in SCENARIOS.items():
                    result = measure(wrk, server, port, path, args.seconds)
                    results[(name, scenario)].append(result)
                    print(f"round {round_} {name:16} {scenario:6} {result['rps']:9,.0f} req/s "
                          f"{result['us']:6.1f} us/request{'  ERRORS' if result['errors'] else ''}", flush=True)
            finally:
                kill_tree(server.pid)

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
    try:
        sys.exit(main())
    except BenchError as error:
        sys.exit(f"floor: {error}")
