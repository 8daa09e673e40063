#!/usr/bin/env python3
"""The client side of scripts/bench-api.sh: drives the server API over
loopback and prints one JSON line per run (also appended to
target/bench-api/results.jsonl).

  batch:  BATCHES requests of 1,000 new users (JSON), sequentially and then
          4 at once; users created per second and request latency.
  import: writes a CSV of USERS users (once; reused), uploads it to
          POST /v1/jobs/import/users, polls the job until done; upload
          time, import time, users/s and the gateway's peak RSS (VmHWM).
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


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["batch", "import"])
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
    args = p.parse_args()
    auth = "Basic " + base64.b64encode(args.key.encode()).decode()
    result = batch(args, auth) if args.mode == "batch" else import_job(args, auth)
    result = {"name": args.name, **result,
              "gateway_rss_mib_after": round(vm(args.pid, "VmRSS") / 2**20, 1)}
    line = json.dumps(result)
    print(line)
    with open("target/bench-api/results.jsonl", "a") as f:
        f.write(line + "\n")


if __name__ == "__main__":
    main()
