"""``openshelf bench``: latency and throughput measured through the real processes.

Every figure is printed beside the raw transport floor measured in the same run,
because on a shared 2-core machine an absolute number means little on its own.
"""

from __future__ import annotations

import argparse
import json
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
    gate.add_argument("--gates", type=int, default=1, help="number of gates (one controller process each)")
    gate.add_argument("--alarm-share", type=float, default=0.1,
                      help="share of reads that are items not on loan (they alarm); the rest pass")
    gate.add_argument("--broker", choices=["auto", "mosquitto", "embedded"], default="auto",
                      help="Mosquitto when installed (auto), or the embedded broker")
    gate.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    gate.set_defaults(func=_run_gate)

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


def _run_gate(args: argparse.Namespace) -> int:
    from openshelf.bench_gate import GateBenchOptions, run_gate_bench

    report = run_gate_bench(GateBenchOptions(
        rate=args.rate, seconds=args.seconds, gates=args.gates, alarm_share=args.alarm_share, broker=args.broker,
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


def _print_table(report: dict) -> None:
    out = sys.stdout
    alarms, floor = report["alarms"], report["floor"]
    out.write(f"gate alarm latency, {report['config']['rate']:.0f} reads/s, {report['config']['gates']} gate(s), "
              f"broker {report['config']['broker']}\n")
    out.write(f"  tag published → relay on: p50 {alarms['p50_ms']:.2f} ms  p99 {alarms['p99_ms']:.2f} ms  "
              f"(n={alarms['measured']}, missing {alarms['missing']})\n")
    out.write(f"  floor: broker hop p50 {floor['broker_hop_p50_ms']:.2f} / p99 {floor['broker_hop_p99_ms']:.2f} ms, "
              f"modbus write p50 {floor['modbus_write_p50_ms']:.2f} / p99 {floor['modbus_write_p99_ms']:.2f} ms, "
              f"path floor p99 {floor['path_p99_ms']:.2f} ms\n")
    out.write(f"  achieved rate {report['achieved_rate']:.0f} reads/s; p99 / floor = {report['p99_over_floor']:.2f}\n")
    for name, rss in report["memory_mb"].items():
        out.write(f"  rss {name:<12} {rss:7.1f} MB\n")
