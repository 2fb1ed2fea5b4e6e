"""Deployment engineer: refuses failing builds, releases the others."""
import hashlib
import json
import sys

task = json.load(sys.stdin)
tests = task.get("tests") or {}
if tests.get("failed", 1) != 0 or tests.get("passed", 0) == 0:
    print(f"refusing to deploy: {tests}", file=sys.stderr)
    sys.exit(1)
files = task.get("files") or {}
digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
environment = task.get("environment") or "staging"
release = {
    "release": "r-" + digest[:12],
    "environment": environment,
    "manifest": {name: hashlib.sha256(src.encode()).hexdigest() for name, src in files.items()},
}
print(f"deployed {release['release']} to {environment}", file=sys.stderr)
json.dump(release, sys.stdout)

# The release bundle, kept by DevCycle as an artifact of this task: files
# left in ./artifacts/ are stored when the program succeeds.
import os  # noqa: E402

os.makedirs("artifacts", exist_ok=True)
with open("artifacts/release.json", "w") as f:
    json.dump({**release, "files": files}, f, indent=2, sort_keys=True)
