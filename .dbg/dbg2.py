import asyncio, sys
sys.path.insert(0,'.')
from benchmarks.matrix import World, Cell
from custom_components.whatsapp_presence.manager import adaptive
orig = adaptive.AnswerWatch._probe_miss
def pm(self, now):
    print("probe miss", now - 1.8e9 % 86400 - (1.8e9 - 1.8e9 % 86400) if False else now, self._probe_misses+1, len(self._probes), sorted(self._probes)[:3])
    return orig(self, now)
adaptive.AnswerWatch._probe_miss = pm
osub = World.subscribe
async def sub(self, jid):
    before = self.ignored
    await osub(self, jid)
    if jid in self.manager._watch._probes:
        print("probe sent", self.clock.time(), jid, "ignored" if self.ignored > before else "accepted", jid in self.answers)
World.subscribe = sub
async def main():
    w = World(Cell("first_pass", 1000, "visible", 150, "stable", "small"))
    w.manager.start(); w._up()
    await w.clock.advance(150)
    await w.manager.stop()
asyncio.run(main())
