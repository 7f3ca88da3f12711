"""``openshelf bench``: latency and throughput measured through the real processes.

Every figure is printed beside the raw transport floor measured in the same run,
because on a shared 2-core machine an absolute number means little on its own.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys


def register(parser: argparse.ArgumentParser) -> None:
    subparsers = parser.add_subparsers(dest="bench_command", metavar="BENCHMARK", required=True)
    gate = subparsers.add_parser(
        "gate", help="tag published → alarm relay on, through broker, backend and gate controller",
        description="Publishes tag reads at a fixed rate as a gate reader would, and times each alarm from the "
                    "publish to the relay coil write seen by a Modbus I/O module simulator. Prints p50/p99 beside "
                    "the broker round trip and the Modbus write measured in the same run, and the resident memory "
                    "of every process.")
    gate.add_argument("--rate", type=float, default=1000.0, help="tag reads per second, all gates together")
    gate.add_argument("--seconds", type=float, default=5.0, help="how long to publish")
    gate.add_argument("--gates", type=int, default=1, help="number of simulated gates, each with its reader")
    gate.add_argument("--alarm-share", type=float, default=0.1,
                      help="share of reads that are items not on loan (they alarm); the rest pass")
    gate.add_argument("--broker", choices=["auto", "mosquitto", "embedded"], default="auto",
                      help="Mosquitto when installed (auto), or the embedded broker")
    gate.add_argument("--gate-processes", choices=["one", "each"], default="one",
                      help="all gates in one `openshelf gate --all` process (default), or one process per gate")
    gate.add_argument("--floor-samples", type=int, default=500, help="samples for each transport floor")
    gate.add_argument("--beam-poll-ms", type=int, default=50,
                      help="each gate polls its beams this often (site default 50); 0 turns people counting off")
    gate.add_argument("--keep", action="store_true", help="keep the temporary folder with the site file and logs")
    gate.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    gate.set_defaults(func=_run_gate)

    from cameras.bench import register_bench as register_camera_bench

    register_camera_bench(subparsers)

    from kiosk.bench import register_bench as register_kiosk_bench

    register_kiosk_bench(subparsers)

    circulation = subparsers.add_parser(
        "circulation", help="checkouts per second through the standalone circulation on SQLite (or a URL)",
        description="Runs checkouts through the standalone circulation service on a fresh database with several "
                    "terminals at once, each checkout durable before it is answered. Prints checkouts/s, latency "
                    "p50/p99 and checkouts per commit beside an empty and a one-row durable commit/s measured in "
                    "the same run. Target: >= 2,000 checkouts/s on SQLite.")
    circulation.add_argument("n", type=int, nargs="?", default=5000, help="checkouts per run")
    circulation.add_argument("url", nargs="?", default=None, help="database URL (default: a fresh SQLite file)")
    circulation.add_argument("--terminals", type=int, nargs="+", default=[1, 4, 8])
    circulation.set_defaults(func=lambda args: _delegate("backend.circulation_bench", args))

    sip2 = subparsers.add_parser(
        "sip2", help="checkouts per second over SIP2 (client against OpenShelf's own SIP2 server, error detection on)",
        description="Starts OpenShelf's SIP2 server in a process of its own over the standalone circulation and "
                    "runs checkouts from several SIP2 terminals with error detection on. Prints checkouts/s beside a "
                    "raw TCP round trip of same-size frames measured in the same run. Target: >= 1,000/s.")
    sip2.add_argument("n", type=int, nargs="?", default=3000, help="checkouts per run")
    sip2.add_argument("--terminals", type=int, nargs="+", default=[1, 4, 8])
    sip2.add_argument("--store", choices=["sqlite", "memory"], default="sqlite")
    sip2.set_defaults(func=lambda args: _delegate("backend.sip2.bench", args))

    demo_memory = subparsers.add_parser(
        "demo-memory", help="resident memory of `openshelf demo --no-kiosk`, every process added up",
        description="Starts the demo without the kiosk in a temporary folder, waits until it is ready and has "
                    "settled, and reports the resident (RSS) and proportional (PSS) memory of the demo process "
                    "and each process it started. Target: under 600 MB in all.")
    demo_memory.add_argument("--settle", type=float, default=5.0, help="seconds to wait after ready")
    demo_memory.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    demo_memory.set_defaults(func=_run_demo_memory)

    rfid = subparsers.add_parser(
        "rfid", help="tag decode speed, and tag placed → tag_arrived through the reader service",
        description="Measures ISO 28560-3 decode speed on one core, then starts the FEIG reader simulator on a "
                    "pty and `openshelf rfid run` on it, and times new tags from placement in the field to their "
                    "tag_arrived event at a subscriber. Prints p50/p99 beside the poll interval and the inventory "
                    "and identification round trips measured in the same run.")
    rfid.add_argument("--samples", type=int, default=100, help="tags placed one after another")
    rfid.add_argument("--poll-ms", type=int, default=100, help="the reader's poll interval")
    rfid.add_argument("--decode-n", type=int, default=200_000, help="tags decoded for the decode speed")
    rfid.add_argument("--broker", choices=["auto", "mosquitto", "embedded"], default="auto",
                      help="Mosquitto when installed (auto), or the embedded broker")
    rfid.add_argument("--json", action="store_true", help="print one JSON document instead of a summary")
    rfid.set_defaults(func=_run_rfid)


def _delegate(module_name: str, args: argparse.Namespace) -> int:
    """Run a benchmark module's own ``main`` with the arguments given here."""
    import importlib

    argv = [str(args.n)] + ([args.url] if getattr(args, "url", None) else [])
    argv += ["--terminals", *(str(terminals) for terminals in args.terminals)]
    if getattr(args, "store", None):
        argv += ["--store", args.store]
    _stop_cleanly_on_sigterm()
    importlib.import_module(module_name).main(argv)
    return 0


def _stop_cleanly_on_sigterm() -> None:
    """SIGTERM (a timeout, a CI runner) unwinds like Ctrl-C, so the benchmark stops what it started."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _run_gate(args: argparse.Namespace) -> int:
    from openshelf.bench_gate import GateBenchOptions, run_gate_bench

    _stop_cleanly_on_sigterm()
    report = run_gate_bench(GateBenchOptions(
        rate=args.rate, seconds=args.seconds, gates=args.gates, alarm_share=args.alarm_share, broker=args.broker,
        gate_processes=args.gate_processes, floor_samples=args.floor_samples, keep_workdir=args.keep,
        beam_poll_ms=args.beam_poll_ms,
    ))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_table(report)
    return 0 if report["alarms"]["measured"] > 0 else 1


def _run_rfid(args: argparse.Namespace) -> int:
    from rfid.bench import RfidBenchOptions, format_report, run_rfid_bench

    report = run_rfid_bench(RfidBenchOptions(decode_n=args.decode_n, samples=args.samples,
                                             poll_interval_ms=args.poll_ms, broker=args.broker))
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0 if report["event_latency"]["n"] > 0 else 1


def _run_demo_memory(args: argparse.Namespace) -> int:
    from openshelf.bench_gate import measure_demo_memory

    _stop_cleanly_on_sigterm()
    report = measure_demo_memory(settle_s=args.settle)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for name, row in report["processes"].items():
            print(f"  {name:<32} rss {row['rss_mb']:7.1f} MB   pss {row['pss_mb']:7.1f} MB")
        print(f"  total rss {report['total_rss_mb']:.1f} MB, pss {report['total_pss_mb']:.1f} MB "
              f"(target < {report['target_mb']} MB)")
    return 0 if report["processes"] else 1


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _print_table(report: dict) -> None:
    out = sys.stdout
    alarms, floor, split = report["alarms"], report["floor"], report["split"]["tag_to_command"]
    config = report["config"]
    out.write(f"gate alarm latency, {config['rate']:.0f} reads/s, {config['gates']} gate(s) "
              f"({config['gate_processes']} process{'es' if config['gate_processes'] == 'each' else ''}), "
              f"broker {config['broker']}\n")
    out.write(f"  tag published -> relay on: p50 {_num(alarms['p50_ms'])} ms  p99 {_num(alarms['p99_ms'])} ms  "
              f"max {_num(alarms['max_ms'])} ms (n={alarms['measured']}, missing {alarms['missing']}, "
              f"local {alarms['local_alarms']}, matching {alarms['matching']})\n")
    exact, gate_share = alarms["exact_gates"], report["split"]["command_to_relay"]
    out.write(f"  on the {exact['gates']} gate(s) with exact pairing: p50 {_num(exact['p50_ms'])} ms  "
              f"p99 {_num(exact['p99_ms'])} ms (n={exact['n']})\n")
    out.write(f"  split: tag -> alarm command seen p50 {_num(split['p50_ms'])} / p99 {_num(split['p99_ms'])} ms; "
              f"command -> relay on p50 {_num(gate_share['p50_ms'])} / p99 {_num(gate_share['p99_ms'])} ms\n")
    out.write(f"  floor: broker hop p50 {_num(floor['broker_hop_p50_ms'])} / "
              f"p99 {_num(floor['broker_hop_p99_ms'])} ms, "
              f"modbus write p50 {_num(floor['modbus_write_p50_ms'])} / p99 {_num(floor['modbus_write_p99_ms'])} ms, "
              f"path floor p99 {_num(floor['path_p99_ms'])} ms\n")
    out.write(f"  achieved rate {report['achieved_rate']:.0f} reads/s; "
              f"p99 / floor = {_num(report['p99_over_floor'])}\n")
    machine = report["machine"]
    out.write(f"  machine: {machine['busy_percent_of_one_core']:.0f}% of one core busy "
              f"({machine['other_processes_percent_of_one_core']:.0f}% not ours), steal {machine['steal_percent']}%\n")
    for name, rss in report["memory_mb"].items():
        cpu = report["cpu_percent_of_one_core"].get(name)
        out.write(f"  {name:<20} rss {rss:7.1f} MB" + (f"   cpu {cpu:5.1f}%" if cpu is not None else "") + "\n")
