import asyncio, sys
sys.path.insert(0,'.')
from tests.manager import test_adaptive as t
from custom_components.whatsapp_presence.manager import adaptive
orig = adaptive.AnswerWatch._hit
def hit(self, watched, now, share):
    r = watched.run
    print("HIT", round(now-1.8e9,1), "pace", round(self.pace,3), "excess", round(self._excess[0]-1.8e9,1), "first", round(r[0][1]-1.8e9,1), "last", round(r[-1][1]-1.8e9,1), len(r), "probes", len(self._probes))
    orig(self, watched, now, share)
    print("   -> pace", round(self.pace,3))
adaptive.AnswerWatch._hit = hit
op = adaptive.AnswerWatch._probe_miss
def pm(self, now):
    op(self, now)
    if not self._probes: print("REFUTE?", round(now-1.8e9,1), self.pace)
adaptive.AnswerWatch._probe_miss = pm
async def main():
    w, m = await t.run(150, adaptive=True)
    print("ignored", w.ignored)
asyncio.run(main())
