"""Print the rows a fault run recorded (COGMORA_FAULT_REPORT, JSON lines) as RELIABILITY.md's
table: `python tests/faults/table.py faults.jsonl`."""

from __future__ import annotations

import json
import sys


def main(path: str) -> None:
    print("| fault | tries | lost | doubled | contradictory | result | seed | time | notes |")
    print("|---|---|---|---|---|---|---|---|---|")
    with open(path) as rows:
        for line in rows:
            r = json.loads(line)
            print(
                f"| {r['fault']} | {r['tries']} | {r['lost']} | {r['doubled']} | "
                f"{r['contradictory']} | {r['result']} | {r['seed']} | {r['seconds']:.0f} s | "
                f"{r['note']} |"
            )


if __name__ == "__main__":
    main(sys.argv[1])
