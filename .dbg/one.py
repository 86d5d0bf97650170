import sys
sys.path.insert(0,'.')
from benchmarks.matrix import Cell, run_cell
for spec in sys.argv[1:]:
    p = spec.split(",")
    r = run_cell(Cell(p[0], int(p[1]), p[2], None if p[3]=="none" else int(p[3]), p[4], p[5]))
    print(round(r.wall,1), r.line()[60:330])
