import asyncio, sys
sys.path.insert(0,'.')
from benchmarks.matrix import World, Cell
async def main():
    w = World(Cell(sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]) if sys.argv[4]!="none" else None, sys.argv[5], sys.argv[6]))
    w.manager._watch  # noqa
    w.manager.start(); w._up()
    for step in range(int(sys.argv[7])):
        await w.clock.advance(float(sys.argv[8]))
        st = w.manager.stats(); wa = w.manager._watch
        print(step, st.queue_length, st.active, w.calls, w.ignored, round(wa.pace,3), wa.reason, wa._held and len(wa._held), {k:(round(c.rate,3),c.hits,c.blocked, c.run and len(c.run)) for k,c in wa._classes.items()}, len(wa._pending), w.manager.connected)
    await w.manager.stop()
asyncio.run(main())
