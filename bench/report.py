"""report.py - prints bench/run.sh's figures as one table and writes them as JSON.

Usage: python3 bench/report.py FIGURES.tsv OUT.json [name=value]...

FIGURES.tsv has one figure a line: key, label, value, unit, target, verdict
(PASS, FAIL or -), note, x_limit and x_peer (the value as a ratio to the limit
and to the Node.js peer's figure; empty when it has none), separated by tabs.
The name=value arguments describe the run (commit, settings, machine) and go
into the JSON's "run" object.
"""

import json
import sys

# The run's fields that are names, not numbers.
TEXT_FIELDS = ("commit", "stamp", "loadavg_start", "loadavg_end")


def number(text):
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() else value


def ratio(value):
    return "-" if value is None else "%.2f" % value


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    rows = []
    with open(argv[1], encoding="utf-8") as f:
        for line in f:
            key, label, value, unit, target, verdict, note, x_limit, x_peer = line.rstrip("\n").split("\t")
            rows.append({"key": key, "label": label, "value": number(value), "unit": unit,
                         "x_limit": number(x_limit) if x_limit not in ("", "-") else None,
                         "x_peer": number(x_peer) if x_peer not in ("", "-") else None,
                         "target": target, "verdict": verdict, "note": note})
    run = dict(arg.split("=", 1) for arg in argv[3:])
    failed = [r["key"] for r in rows if r["verdict"] == "FAIL"]
    with open(argv[2], "w", encoding="utf-8") as f:
        # A short commit hash may be all digits ("8456777") or read as a float ("1e5"): kept as text.
        json.dump({"run": {k: v if k in TEXT_FIELDS else number(v) for k, v in run.items()}, "figures": rows,
                   "passed": not failed, "failed": failed}, f, indent=2)
        f.write("\n")

    headers = ("figure", "value", "x limit", "x peer", "target", "result", "note")
    table = [(r["label"], "%s %s" % (r["value"], r["unit"]), ratio(r["x_limit"]), ratio(r["x_peer"]),
              r["target"], r["verdict"], r["note"]) for r in rows]
    widths = [max(len(str(row[i])) for row in table + [headers]) for i in range(len(headers))]
    line = "  ".join("%-*s" % (w, h) for w, h in zip(widths, headers)).rstrip()
    print()
    print(line)
    print("-" * len(line))
    for row in table:
        print("  ".join("%-*s" % (w, c) for w, c in zip(widths, row)).rstrip())
    print()
    print("%d of %d targets met; %s" % (
        sum(r["verdict"] == "PASS" for r in rows), sum(r["verdict"] in ("PASS", "FAIL") for r in rows),
        ", ".join("%s=%s" % kv for kv in run.items())))
    print("written to %s" % argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
