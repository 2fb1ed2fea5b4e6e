"""Test engineer: compiles the generated files and calls every feature."""
import json
import sys

task = json.load(sys.stdin)
files = task.get("files") or {}
passed, failures = 0, []
for name, source in sorted(files.items()):
    scope = {}
    try:
        exec(compile(source, name, "exec"), scope)
    except Exception as e:  # a generated file that does not even load
        failures.append(f"{name}: {e}")
        continue
    for fn in scope.get("FEATURES", []):
        if fn() == fn.__name__:
            passed += 1
        else:
            failures.append(f"{name}: {fn.__name__} returned the wrong value")
for f in failures:
    print(f"FAIL {f}", file=sys.stderr)
print(f"{passed} passed, {len(failures)} failed", file=sys.stderr)
json.dump({"passed": passed, "failed": len(failures), "failures": failures}, sys.stdout)
