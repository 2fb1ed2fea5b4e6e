"""Requirements analyst: splits requirements into features with acceptance checks.

A DevCycle process agent: the task input arrives as JSON on stdin, the output
goes as JSON to stdout, and what it writes to stderr becomes the task log.
"""
import json
import re
import sys

task = json.load(sys.stdin)
text = task.get("requirements", "")
lines = [l.strip(" -*\t") for l in text.splitlines() if l.strip(" -*\t")]
if not lines:
    print("no requirements given", file=sys.stderr)
    sys.exit(2)
features = []
for line in lines:
    name = re.sub(r"[^a-z0-9]+", "_", line.lower()).strip("_")[:40] or "feature"
    features.append({"name": name, "description": line})
    print(f"feature: {name}", file=sys.stderr)
json.dump({"features": features, "count": len(features)}, sys.stdout)
