#!/usr/bin/env python3
"""The review API's timings as `visage bench library`'s api() takes them (same requests, one
untimed warm pass, five timed passes), on an existing library: api.py BINARY DB [extra paths]."""
import http.client, json, subprocess, sys, time, urllib.parse

exe, db = sys.argv[1], sys.argv[2]
extra = sys.argv[3:]
token = "benchlibrarytoken0123456789"
t0 = time.time()
p = subprocess.Popen([exe, "serve", "--bind", "127.0.0.1:0", "--token", token, "--db", db],
                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
first = p.stdout.readline().strip()
addr = first.removeprefix("http://").split("/")[0]
host, port = addr.rsplit(":", 1)

def get(path):
    s = time.time()
    c = http.client.HTTPConnection(host, int(port), timeout=600)
    c.request("GET", path, headers={"X-Visage-Token": token, "Connection": "close"})
    r = c.getresponse()
    body = r.read()
    ms = (time.time() - s) * 1000
    if r.status != 200:
        raise SystemExit(f"GET {path}: {r.status} {body[:200]}")
    return body, ms

try:
    get("/")
    clusters = json.loads(get("/api/clusters?limit=20")[0])
    first_faces = [f["id"] for f in (clusters["clusters"][0]["preview"] if clusters["clusters"] else [])]
    for f in first_faces:
        get(f"/faces/{f}.jpg")
    first_page = time.time() - t0
    page = [c["id"] for c in clusters["clusters"]]
    also = "/api/also?clusters=" + ",".join(page)
    people = json.loads(get("/api/people")[0])
    paths = ["/api/people", "/api/people?hidden=1", "/api/clusters?limit=20",
             "/api/clusters?offset=20&limit=20", "/api/faces?unassigned=1&limit=100",
             "/api/faces?unassigned=1&offset=100&limit=100", "/api/progress", "/api/suggestions"]
    if page:
        paths.append(also)
    for c in clusters["clusters"][:5]:
        paths.append(f"/api/faces?cluster={c['id']}&limit=100")
    for pe in people[:3]:
        paths.append("/api/faces?person=" + urllib.parse.quote(pe["name"]) + "&limit=200")
    for f in first_faces[:12]:
        paths.append(f"/faces/{f}.jpg")
        ph = next((x["photo"] for x in clusters["clusters"][0]["preview"] if x["id"] == f), None)
        if ph:
            paths.append(f"/api/photos/{ph}")
    for q in paths:
        get(q)
    times = []
    for _ in range(5):
        for q in paths:
            times.append((get(q)[1], q))
    times.sort()
    at = lambda q: times[round((len(times) - 1) * q)][0]
    out = {"requests": len(times), "p50_ms": round(at(0.5), 1), "p95_ms": round(at(0.95), 1),
           "max_ms": round(times[-1][0], 1), "slowest": times[-1][1], "first_page_s": round(first_page, 3)}
    ex = {}
    for q in extra:
        get(q)
        ex[q] = round(min(get(q)[1] for _ in range(3)), 1)
    if ex:
        out["extra_ms_best_of_3"] = ex
    print(json.dumps(out))
finally:
    p.kill()
    p.wait()
