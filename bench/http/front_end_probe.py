#!/usr/bin/python3
# Probes a running node's HTTP API (see front-end-probe.sh, which runs it):
#   front_end_probe.py HTTP_PORT NODE_PID slow|wait
import socket, sys, time, os, select, json
port, pid, what = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def threads(): return len(os.listdir(f"/proc/{pid}/task"))
def one_get(timeout=15):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    t = time.time()
    s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    try:
        while True:
            d = s.recv(65536)
            if not d: break
            data += d
    except Exception as e:
        return None, time.time() - t
    s.close()
    return data[:12], time.time() - t
if what == "slow":
    print("threads before", threads())
    slow = []
    for i in range(300):
        c = socket.create_connection(("127.0.0.1", port), timeout=5)
        c.sendall(b"POST /v1/workflows/nap/executions HTTP/1.1\r\nHost: x\r\nContent-Len")
        slow.append(c)
    time.sleep(0.5)
    lat = []
    for i in range(5):
        st, dt = one_get()
        lat.append(dt)
        print("GET beside 300 half requests:", st, "%.3f s" % dt)
    print("threads with 300 slow", threads())
    for c in slow: c.close()
elif what == "wait":
    print("threads before", threads())
    n = 500
    conns = []
    t0 = time.time()
    for i in range(n):
        c = socket.create_connection(("127.0.0.1", port), timeout=30)
        c.setblocking(False)
        body = b"{}"
        c.sendall(b"POST /v1/workflows/nap/executions?wait=true&id=w%d-%d HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}" % (os.getpid(), i))
        conns.append(c)
    bufs = {c: b"" for c in conns}
    open_ = set(conns)
    peak = threads()
    deadline = t0 + 90
    while open_ and time.time() < deadline:
        r, _, _ = select.select(list(open_)[:1000], [], [], 0.2)
        for c in r:
            try:
                d = c.recv(65536)
            except (BlockingIOError, ConnectionResetError):
                d = b"" if not isinstance(sys.exc_info()[1], BlockingIOError) else None
            if d is None: continue
            if not d:
                open_.discard(c); c.close()
            else:
                bufs[c] += d
        peak = max(peak, threads())
    dt = time.time() - t0
    statuses = {}
    completed = 0
    for c, b in bufs.items():
        st = b[9:12].decode() if b.startswith(b"HTTP/1.1") else "none"
        statuses[st] = statuses.get(st, 0) + 1
        if b'"status":"completed"' in b: completed += 1
    print("500 waiting starts: %.2f s, statuses %s, completed %d, peak node threads %d" % (dt, statuses, completed, peak))
