import sys, cProfile, pstats
sys.path.insert(0,'.')
from benchmarks.matrix import Cell, run_cell
cProfile.run('r = run_cell(Cell("week", 100, "visible", 150, "hourly", "medium"))', '.dbg/prof.out')
print(r.wall)
pstats.Stats('.dbg/prof.out').sort_stats('tottime').print_stats(14)
