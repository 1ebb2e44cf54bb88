#!/usr/bin/env python3
"""Where the wall time of a first run goes: a summary of `perf script` output
of the scheduler's events (bench/timeline.sh records them system-wide).

usage: bench/timeline.py PERF_SCRIPT_TEXT [PROGRAM]

PROGRAM (default mlx) is the name of the binary whose exec starts the
timeline; its children that exec /bin/sh are the steps. Prints:
  - how long 0, 1, 2 ... steps were alive at once (fork to exit),
  - the states of the main thread: on a CPU, runnable (woken or preempted,
    waiting for a CPU), sleeping in D (vfork, fsync ...) or S (waiting),
  - from each step's exit to the main thread's next wake-up and to the
    next step's fork,
  - for each step's child: fork to its first moment on a CPU, and to exec,
  - CPU time by command while the run lasted.
"""
import bisect
import collections
import re
import sys

LINE = re.compile(r"^\s*(.+?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s*(.*)$")


def quantiles(values):
    if not values:
        return "n=0"
    v = sorted(values)
    return "n=%d median %.2f ms p90 %.2f ms max %.2f ms sum %.3f s" % (
        len(v), 1e3 * v[len(v) // 2], 1e3 * v[int(len(v) * 0.9)], 1e3 * v[-1], sum(v))


def main():
    path = sys.argv[1]
    program = sys.argv[2] if len(sys.argv) > 2 else "mlx"
    events = []
    with open(path) as f:
        for line in f:
            m = LINE.match(line)
            if m:
                comm, tid, cpu, t, name, rest = m.groups()
                events.append((float(t), int(tid), int(cpu), name.split(":")[-1], rest))
    main_tid = start = None
    for t, tid, _, name, rest in events:
        if name == "sched_process_exec" and re.search(r"filename=\S*/%s " % re.escape(program), rest):
            main_tid, start = tid, t
            break
    if main_tid is None:
        sys.exit("timeline.py: no exec of %s in %s" % (program, path))
    end = max(t for t, tid, *_ in events if tid == main_tid)
    children = {}
    for t, tid, _, name, rest in events:
        if name == "sched_process_fork" and int(re.search(r" pid=(\d+)", rest).group(1)) == main_tid:
            children[int(re.search(r"child_pid=(\d+)", rest).group(1))] = {"fork": t}
        elif name == "sched_process_exec" and tid in children:
            children[tid]["exec"] = t
            children[tid]["file"] = re.search(r"filename=(\S+)", rest).group(1)
        elif name == "sched_process_exit" and tid in children:
            children[tid]["exit"] = t
    steps = sorted((c for c in children.values() if c.get("file") == "/bin/sh" and "exit" in c),
                   key=lambda c: c["fork"])
    if not steps:
        sys.exit("timeline.py: no step (a child exec'ing /bin/sh) in the trace")
    print("wall %.3f s; %d steps; first fork at +%.3f s, last exit at +%.3f s" % (
        end - start, len(steps), steps[0]["fork"] - start, steps[-1]["exit"] - start))

    points = sorted([(c["fork"], 1) for c in steps] + [(c["exit"], -1) for c in steps])
    alive, last, time_with = 0, points[0][0], collections.Counter()
    for t, d in points:
        time_with[alive] += t - last
        last, alive = t, alive + d
    print("seconds with N steps alive:", {n: round(v, 3) for n, v in sorted(time_with.items())})

    states, state, since = collections.Counter(), "on cpu", start
    first_on = {}
    oncpu, last_switch = collections.Counter(), {}
    for t, tid, cpu, name, rest in events:
        if name == "sched_switch":
            prev = int(re.search(r"prev_pid=(\d+)", rest).group(1))
            nxt = int(re.search(r"next_pid=(\d+)", rest).group(1))
            if nxt in children and nxt not in first_on:
                first_on[nxt] = t
            if start <= t <= end:
                if cpu in last_switch:
                    prev_comm = re.search(r"prev_comm=(.*?) prev_pid", rest).group(1)
                    oncpu["main thread" if prev == main_tid else prev_comm] += t - last_switch[cpu]
                last_switch[cpu] = t
                if prev == main_tid:
                    states["on cpu"] += t - since
                    since = t
                    s = re.search(r"prev_state=(\S+)", rest).group(1)
                    state = "runnable (preempted)" if s.startswith("R") else (
                        "asleep, D" if s.startswith("D") else "asleep, S")
                if nxt == main_tid:
                    states[state] += t - since
                    since, state = t, "on cpu"
        elif name == "sched_wakeup" and start <= t <= end and re.search(r" pid=%d " % main_tid, rest) \
                and state.startswith("asleep"):
            states[state] += t - since
            since, state = t, "runnable (woken)"
    print("main thread, seconds:", {k: round(v, 3) for k, v in states.most_common()})

    forks = sorted(c["fork"] for c in steps)
    wakes = sorted(t for t, tid, _, name, rest in events
                   if name == "sched_wakeup" and re.search(r" pid=%d " % main_tid, rest))
    to_wake, to_fork = [], []
    for c in steps:
        i, j = bisect.bisect_left(wakes, c["exit"]), bisect.bisect_left(forks, c["exit"])
        if i < len(wakes):
            to_wake.append(wakes[i] - c["exit"])
        if j < len(forks):
            to_fork.append(forks[j] - c["exit"])
    print("a step's exit -> main thread woken:", quantiles(to_wake))
    print("a step's exit -> next step's fork: ", quantiles(to_fork))
    print("a step's life, fork -> exit:       ", quantiles([c["exit"] - c["fork"] for c in steps]))
    tids = {id(c): k for k, c in children.items()}
    waits = [max(0.0, first_on[tids[id(c)]] - c["fork"]) for c in steps if tids[id(c)] in first_on]
    print("child: fork -> first on a CPU:     ", quantiles(waits))
    print("child: fork -> exec (mlx in vfork):", quantiles([c["exec"] - c["fork"] for c in steps]))
    print("CPU seconds by command during the run:",
          ", ".join("%s %.3f" % (k, v) for k, v in oncpu.most_common(10)))


if __name__ == "__main__":
    main()
