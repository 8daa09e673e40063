#!/usr/bin/env python3
"""The client side of scripts/bench-api.sh: drives the server API over
loopback and prints one JSON line per run (also appended to
target/bench-api/results.jsonl).

  batch:  BATCHES requests of 1,000 new users (JSON), sequentially and then
          4 at once; users created per second and request latency.
  import: writes a CSV of USERS users (once; reused), uploads it to
          POST /v1/jobs/import/users, polls the job until done; upload
          time, import time, users/s and the gateway's peak RSS (VmHWM);
          with --pg-pids-of, also PostgreSQL's peak memory (the sum of its
          processes' PSS, sampled every 0.2 s).
  audit-file: writes RECORDS audit records as a `tokenim store export`
          file (100 actors, 28 actions, 10,000 targets, one record every
          2.5 s), for `tokenim store import`.
  audit:  QUERIES queries of GET /v1/audit per kind (by actor, action,
          target, a one-hour time range, actor within a day), 100 records
          a page, each from a random point; p50/p99 per kind.
"""
import argparse
import base64
import concurrent.futures
import http.client
import json
import os
import statistics
import time
import urllib.parse


def conn(url):
    u = urllib.parse.urlparse(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=600)


def call(url, auth, method, path, body=None, ctype="application/json"):
    c = conn(url)
    headers = {"authorization": auth}
    if body is not None:
        headers["content-type"] = ctype
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    c.close()
    if r.status >= 400:
        raise SystemExit(f"{method} {path}: {r.status} {data[:300]!r}")
    return json.loads(data) if data else None


def vm(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def batch(args, auth):
    """1,000 users per request: `create` makes new ones; `upsert` and
    `merge` change users the run created first (untimed), `merge` only
    their names, `upsert` whole records."""
    def users(i, name):
        return [{"id": f"b{args.tag}-{i}-{j}", "name": f"{name} {i} {j}", "metadata": {"n": j}}
                for j in range(1000)]

    def post(i, mode, name, expect):
        body = users(i, name)
        if mode == "merge":
            body = [{"id": u["id"], "name": u["name"]} for u in body]
        t = time.perf_counter()
        r = call(args.url, auth, "POST", f"/v1/users?mode={mode}", json.dumps(body).encode())
        assert r[expect] == 1000, r
        return time.perf_counter() - t

    results = {"batch_mode": args.batch_mode}
    for workers in (1, 4):
        ids = range(workers * 10_000, workers * 10_000 + args.batches)
        if args.batch_mode != "create":
            with concurrent.futures.ThreadPoolExecutor(workers) as pool:
                list(pool.map(lambda i: post(i, "create", "User", "created"), ids))
        expect = "created" if args.batch_mode == "create" else "updated"
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            lat = list(pool.map(lambda i: post(i, args.batch_mode, "Renamed", expect), ids))
        wall = time.perf_counter() - t0
        lat.sort()
        results[f"concurrency_{workers}"] = {
            "users_per_s": round(args.batches * 1000 / wall),
            "request_ms_p50": round(statistics.median(lat) * 1000, 1),
            "request_ms_p99": round(lat[int(len(lat) * 0.99) - 1] * 1000, 1),
        }
    return results


def import_job(args, auth):
    if not os.path.exists(args.file) or os.path.getsize(args.file) == 0 or args.regenerate:
        with open(args.file, "w") as f:
            f.write("id,name,roles,metadata\n")
            for i in range(args.users):
                f.write(f'u{i},"User {i}",member,"{{""n"":{i}}}"\n')
    size = os.path.getsize(args.file)
    # The users hold the role `member`, which must exist.
    call(args.url, auth, "PUT", "/v1/roles/member", json.dumps({"permissions": ["presence"]}))
    c = conn(args.url)
    t0 = time.perf_counter()
    with open(args.file, "rb") as f:
        c.request("POST", "/v1/jobs/import/users", body=f,
                  headers={"authorization": auth, "content-type": "text/csv",
                           "content-length": str(size)})
        r = c.getresponse()
        job = json.loads(r.read())
    upload = time.perf_counter() - t0
    if r.status != 202:
        raise SystemExit(f"import: {r.status} {job}")
    while job["state"] in ("queued", "running"):
        time.sleep(0.5)
        job = call(args.url, auth, "GET", f"/v1/jobs/{job['id']}")
    total = time.perf_counter() - t0
    return {
        "users": args.users, "file_bytes": size, "state": job["state"],
        "created": job["created"], "failed": job["failed"],
        "upload_s": round(upload, 2), "total_s": round(total, 2),
        "users_per_s": round(args.users / total),
        "gateway_peak_rss_mib": round(vm(args.pid, "VmHWM") / 2**20, 1),
    }


def postgres_pss(database):
    """The PSS sum of the PostgreSQL processes: the postmaster's family
    (its children serve every database; the benchmark's are most of it)."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() != "postgres":
                    continue
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


ACTIONS = ["key.created", "key.rotated", "key.revoked", "key.restored", "grant.added",
           "grant.revoked", "role.set", "role.deleted", "user.roles_changed", "user.updated",
           "user.tokens_revoked", "user.banned", "user.unbanned", "user.disconnected",
           "user.deleted", "group.deleted", "group.updated", "key.updated", "key.deleted",
           "auth.failed", "users.batch", "groups.batch", "group.members_added",
           "group.members_removed", "job.started", "job.finished", "token.minted",
           "message.published"]
AUDIT_START = 1_780_000_000_000
AUDIT_STEP = 2_500


def audit_record(i):
    return {"id": i, "time": AUDIT_START + i * AUDIT_STEP, "actor": f"ak_{i % 100:016x}",
            "action": ACTIONS[i % len(ACTIONS)], "target": f"user:u{i % 10_000}",
            "source": "127.0.0.1", "detail": {"n": i}}


def audit_file(args):
    with open(args.file, "w") as f:
        for i in range(1, args.records + 1):
            line = {"table": "audit", "key": f"{i:020}", "value": audit_record(i)}
            f.write(json.dumps(line, separators=(",", ":")) + "\n")
        f.write(json.dumps({"table": "meta", "key": "counter/audit", "value": args.records}) + "\n")
    return {"records": args.records, "file_bytes": os.path.getsize(args.file)}


def audit_queries(args, auth):
    import random
    rnd = random.Random(7)
    n = args.records
    last = AUDIT_START + n * AUDIT_STEP
    kinds = {
        "actor": lambda: f"actor=ak_{rnd.randrange(100):016x}",
        "action": lambda: f"action={rnd.choice(ACTIONS)}",
        "target": lambda: f"target=user:u{rnd.randrange(10_000)}",
        "hour": lambda: (lambda t: f"from={t}&to={t + 3_600_000}")(
            rnd.randrange(AUDIT_START, last - 3_600_000)),
        "actor_day": lambda: (lambda t: f"actor=ak_{rnd.randrange(100):016x}&from={t}&to={t + 86_400_000}")(
            rnd.randrange(AUDIT_START, last - 86_400_000)),
    }
    out = {"records": n}
    c = conn(args.url)
    for kind, query in kinds.items():
        times, got = [], 0
        for _ in range(args.queries):
            after = rnd.randrange(n // 2)
            path = f"/v1/audit?{query()}&limit=100&after={after}"
            t0 = time.perf_counter()
            c.request("GET", path, headers={"authorization": auth})
            r = c.getresponse()
            body = r.read()
            times.append(time.perf_counter() - t0)
            if r.status != 200:
                raise SystemExit(f"{path}: {r.status} {body[:200]!r}")
            got += len(json.loads(body)["records"])
        times.sort()
        out[kind] = {"p50_ms": round(times[len(times) // 2] * 1000, 2),
                     "p99_ms": round(times[int(len(times) * 0.99) - 1] * 1000, 2),
                     "records_per_page": round(got / args.queries, 1)}
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["batch", "import", "audit-file", "audit"])
    p.add_argument("--url", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--batches", type=int, default=200)
    p.add_argument("--batch-mode", choices=["create", "upsert", "merge"], default="create")
    p.add_argument("--users", type=int, default=1_000_000)
    p.add_argument("--file", default="target/bench-api/users.csv")
    p.add_argument("--regenerate", action="store_true")
    p.add_argument("--tag", default=str(os.getpid()))
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--pg", action="store_true", help="sample PostgreSQL's memory")
    args = p.parse_args()
    auth = "Basic " + base64.b64encode(args.key.encode()).decode()
    if args.mode == "audit-file":
        print(json.dumps(audit_file(args)))
        return
    peak = [0]
    if args.pg:
        import threading
        def sample():
            while True:
                peak[0] = max(peak[0], postgres_pss(None))
                time.sleep(0.2)
        threading.Thread(target=sample, daemon=True).start()
    if args.mode == "batch":
        result = batch(args, auth)
    elif args.mode == "import":
        result = import_job(args, auth)
    else:
        result = audit_queries(args, auth)
    if args.pg:
        result["postgres_peak_pss_mib"] = round(peak[0] / 2**20, 1)
    result = {"name": args.name, **result,
              "gateway_rss_mib_after": round(vm(args.pid, "VmRSS") / 2**20, 1)}
    line = json.dumps(result)
    print(line)
    with open("target/bench-api/results.jsonl", "a") as f:
        f.write(line + "\n")


if __name__ == "__main__":
    main()
