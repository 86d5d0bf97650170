import sys, time
sys.path.insert(0,'.')
from benchmarks.matrix import Cell, run_cell
for c in [Cell("first_pass", 40000, "visible", 150, "stable", "small"), Cell("first_pass", 40000, "never", None, "stable", "medium"),
          Cell("week", 1000, "visible", 150, "hourly", "medium"), Cell("week", 1000, "always", None, "stable", "medium"), Cell("week", 1000, "never", 250, "storm", "small"), Cell("week", 100, "visible", 150, "hourly", "small"), Cell("first_pass", 1000, "visible", 150, "storm", "small")]:
    r = run_cell(c); print(round(r.wall,2), r.line()[:330])
