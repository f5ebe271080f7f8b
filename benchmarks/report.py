#!/usr/bin/env python3
"""Reads Google Benchmark JSON, prints the ratios against the peers measured in the same run,
checks the goals of issue 7, and writes a Markdown summary and a gnuplot chart."""
import json
import subprocess
import sys
from pathlib import Path

results_path, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
data = json.loads(results_path.read_text())

runs = {}
for b in data["benchmarks"]:
    if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
        continue
    name = b.get("run_name", b["name"])
    runs[name] = b


def ns(name):
    b = runs[name]
    factor = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b["time_unit"]]
    return b["real_time"] * factor


def counter(name, key):
    return runs[name][key]


lines = []


def emit(text=""):
    print(text)
    lines.append(text)


ctx = data["context"]
repetitions = max((b.get("repetitions", 1) for b in data["benchmarks"]), default=1)
emit(f"Machine: {ctx.get('num_cpus')} cores at {ctx.get('mhz_per_cpu')} MHz ({ctx.get('host_name', '')}), "
     f"choreo built Release with g++; median of {repetitions} repetitions; "
     f"Google Benchmark library built as {ctx.get('library_build_type', '?')} (Debian's package). Run: {ctx.get('date', '')}")
emit()
peers = [("plain call", "plain_call"), ("std::vector<std::function>", "std_function_vector"),
         ("Boost.Signals2", "signals2_signal"), ("Boost.Signals2, dummy_mutex", "signals2_dummy_mutex"),
         ("libsigc++ 3", "libsigcpp_signal"), ("choreo immediate", "choreo_immediate")]
emit("| immediate dispatch, ns per event | 1 listener | 4 listeners | 16 listeners | allocations per event |")
emit("|---|---:|---:|---:|---:|")
for label, key in peers:
    cells = [f"{ns(f'{key}/{n}'):.1f}" for n in (1, 4, 16)]
    emit(f"| {label} | {' | '.join(cells)} | {counter(f'{key}/16', 'allocations_per_event'):.2f} |")
emit()
emit("| ratio | 1 listener | 4 listeners | 16 listeners |")
emit("|---|---:|---:|---:|")
for label, key in peers[:-1]:
    cells = [f"{ns(f'choreo_immediate/{n}') / ns(f'{key}/{n}'):.2f}x" for n in (1, 4, 16)]
    emit(f"| choreo / {label} | {' | '.join(cells)} |")
emit()
uow = "choreo_unit_of_work"
emit(f"Unit of work (begin, publish, one before_commit and one after_commit listener, commit): "
     f"{ns(uow):.0f} ns per event, {counter(uow, 'allocations_per_event'):.4f} allocations per event.")
emit()
emit("| asynchronous delivery, 1,000 events per round | events per second | vs raw asio::post | allocations per event |")
emit("|---|---:|---:|---:|")
raw = counter("raw_asio_post/real_time", "events_per_second")
emit(f"| raw asio::post, one handler per event | {raw:,.0f} | 1.00x | {counter('raw_asio_post/real_time', 'allocations_per_event'):.2f} |")
for per_commit in (1, 100):
    for per_key in (0, 1):
        name = f"choreo_async_after_commit/events_per_commit:{per_commit}/per_key:{per_key}/real_time"
        eps = counter(name, "events_per_second")
        emit(f"| choreo after_commit async, {per_commit} per commit{', per-key order' if per_key else ''} | "
             f"{eps:,.0f} | {eps / raw:.2f}x | {counter(name, 'allocations_per_event'):.2f} |")
emit()
shop = [(m, d) for m in (0, 1) for d in (0, 1)]
if all(f"shop_create_and_pay/saga:{m}/disk:{d}/real_time" in runs for m, d in shop):
    emit("| shop, create and pay | flows per second |")
    emit("|---|---:|")
    for m, d in shop:
        name = f"shop_create_and_pay/saga:{m}/disk:{d}/real_time"
        emit(f"| {'saga' if m else 'transactional'} mode, SQLite {'on disk (WAL)' if d else 'in memory'} | "
             f"{counter(name, 'flows_per_second'):,.0f} |")
    emit()
relay_runs = [(0, 256), (1, 256), (1, 32)]
if all(f"outbox_relay/disk:{d}/batch:{b}/real_time" in runs for d, b in relay_runs):
    where = {0: "SQLite in memory", 1: "SQLite on disk (WAL)"}
    emit("| transactional outbox | events per second | vs PostgreSQL outbox anchor (14,500/s) |")
    emit("|---|---:|---:|")
    for d, b in relay_runs:
        eps = counter(f"outbox_relay/disk:{d}/batch:{b}/real_time", "events_per_second")
        emit(f"| relay alone, batches of {b}, {where[d]} | {eps:,.0f} | {eps / 14_500:.2f}x |")
    for d in (0, 1):
        eps = counter(f"outbox_commit_and_relay/disk:{d}/real_time", "events_per_second")
        ceiling = counter(f"sqlite_commit_only/disk:{d}/real_time", "events_per_second")
        emit(f"| one commit per event plus relay, {where[d]} (commits alone: {ceiling:,.0f}/s) | {eps:,.0f} | "
             f"{eps / 14_500:.2f}x |")
    emit()
if "postgresql_commit_only/real_time" in runs:
    emit("| transactional outbox on PostgreSQL (fsync on) | events per second | vs anchor (14,500/s) | vs commits alone |")
    emit("|---|---:|---:|---:|")
    ceiling = counter("postgresql_commit_only/real_time", "events_per_second")
    relay = counter("postgresql_outbox_relay/batch:256/real_time", "events_per_second")
    both = counter("postgresql_outbox_commit_and_relay/real_time", "events_per_second")
    emit(f"| relay alone, batches of 256 | {relay:,.0f} | {relay / 14_500:.2f}x | |")
    emit(f"| one commit per event plus relay | {both:,.0f} | {both / 14_500:.2f}x | {both / ceiling:.2f}x |")
    emit(f"| the same commits without the event | {ceiling:,.0f} | | 1.00x |")
    emit()
if "sagas/redis:1/real_time" in runs:
    emit("| through Redis (a redis-server on loopback) | in memory | with Redis | ratio |")
    emit("|---|---:|---:|---:|")
    for threads in (1, 4):
        mem = counter(f"saga_store_step/redis:0/real_time/threads:{threads}", "steps_per_second")
        red = counter(f"saga_store_step/redis:1/real_time/threads:{threads}", "steps_per_second")
        emit(f"| saga store, steps per second (claim and finish), {threads} thread(s) | {mem:,.0f} | {red:,.0f} | "
             f"{red / mem:.3f}x |")
    mem = counter("sagas/redis:0/real_time", "sagas_per_second")
    red = counter("sagas/redis:1/real_time", "sagas_per_second")
    emit(f"| three-step sagas per second, state in the store (anchor: DTM, 10,800/s) | {mem:,.0f} | {red:,.0f} | "
         f"{red / mem:.3f}x |")
    emit(f"| Redis Streams: events per second, published and consumed with acknowledgement | | "
         f"{counter('streams/real_time', 'events_per_second'):,.0f} | |")
    emit()
over_redis, over_kafka = "sagas_over/transport:0/min_time:2.000/real_time", "sagas_over/transport:1/min_time:2.000/real_time"
if over_redis in runs and over_kafka in runs:
    emit("| sagas across a transport (state in Redis, two hops per saga) | Redis Streams | Kafka | Kafka / Redis |")
    emit("|---|---:|---:|---:|")
    red = counter(over_redis, "sagas_per_second")
    kaf = counter(over_kafka, "sagas_per_second")
    emit(f"| three-step sagas per second, each hop through a consumer group | {red:,.0f} | {kaf:,.0f} | {kaf / red:.2f}x |")
    for stage in ("relay", "transport", "queue", "handle", "whole"):
        r50, r99 = counter(over_redis, f"hop_{stage}_p50_us"), counter(over_redis, f"hop_{stage}_p99_us")
        k50, k99 = counter(over_kafka, f"hop_{stage}_p50_us"), counter(over_kafka, f"hop_{stage}_p99_us")
        emit(f"| a hop's {stage} stage, p50 / p99 in µs | {r50:,.0f} / {r99:,.0f} | {k50:,.0f} / {k99:,.0f} | |")
    emit()
emit(f"Saga state: {counter('memory_store_bytes_per_saga/iterations:1', 'bytes_per_saga'):.0f} bytes per in-flight "
     f"saga in memory_store (a start, seven steps, a fan-in); "
     f"{counter('memory_store_step', 'steps_per_second'):,.0f} steps per second (claim and finish).")
emit()

goals = []
for n in (1, 16):
    ratio = ns(f"choreo_immediate/{n}") / ns(f"std_function_vector/{n}")
    goals.append((f"immediate within 1.5x of std::function at {n} listener(s)", ratio <= 1.5, f"{ratio:.2f}x"))
    speedup = ns(f"signals2_signal/{n}") / ns(f"choreo_immediate/{n}")
    goals.append((f"immediate 10x faster than Boost.Signals2 at {n} listener(s)", speedup >= 10, f"{speedup:.1f}x"))
alloc = max(counter("choreo_immediate/16", "allocations_per_event"), counter(uow, "allocations_per_event"))
goals.append(("zero allocations per event, immediate and unit of work", alloc < 0.001, f"{alloc:.4f}"))
best = max(counter(f"choreo_async_after_commit/events_per_commit:100/per_key:{k}/real_time", "events_per_second")
           for k in (0, 1))
goals.append(("async at least raw asio::post's events per second (batched)", best >= raw, f"{best / raw:.2f}x"))
if "shop_create_and_pay/saga:0/disk:0/real_time" in runs:
    flows = counter("shop_create_and_pay/saga:0/disk:0/real_time", "flows_per_second")
    goals.append(("shop: 100,000 flows per second, transactional, in memory", flows >= 100_000, f"{flows:,.0f}"))
if "outbox_relay/disk:1/batch:256/real_time" in runs:
    eps = counter("outbox_relay/disk:1/batch:256/real_time", "events_per_second")
    goals.append(("outbox relay past the 14,500 events/s anchor, SQLite on disk", eps > 14_500, f"{eps:,.0f}"))
if "sagas/redis:1/real_time" in runs:
    red = counter("sagas/redis:1/real_time", "sagas_per_second")
    goals.append(("sagas with Redis state at DTM's 10,800/s", red >= 10_800, f"{red:,.0f}"))
emit("| goal | met | measured |")
emit("|---|---|---:|")
for text, met, value in goals:
    emit(f"| {text} | {'yes' if met else 'NO'} | {value} |")

out_dir.mkdir(parents=True, exist_ok=True)
(out_dir / "summary.md").write_text("\n".join(lines) + "\n")
with open(out_dir / "dispatch.dat", "w") as f:
    f.write("# peer, ns per event at 1, 4 and 16 listeners\n")
    for label, key in peers:
        f.write(f"\"{label}\" " + " ".join(f"{ns(f'{key}/{n}'):.2f}" for n in (1, 4, 16)) + "\n")
script = f"""
set terminal pngcairo size 900,480 font 'Sans,10' noenhanced
set output '{out_dir / 'chart.png'}'
set title 'Immediate dispatch: ns per event (lower is better), same run'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y
set ylabel 'ns per event (log scale)'
set key top left
set xtics rotate by -20
plot '{out_dir / 'dispatch.dat'}' using 2:xtic(1) title '1 listener', '' using 3 title '4 listeners', '' using 4 title '16 listeners'
"""
subprocess.run(["gnuplot"], input=script, text=True, check=True)
print(f"\nwrote {out_dir / 'summary.md'} and {out_dir / 'chart.png'}")
