import asyncio, sys
sys.path.insert(0,'.')
from benchmarks.matrix import World, Cell
from custom_components.whatsapp_presence.manager import adaptive
W=[None]
orig = adaptive.AnswerWatch._hit
def hit(self, watched, now, share):
    w=W[0]
    print("HIT at", round(now-w.clock._now+ (w.clock._now-1799971200),1), "pace", round(self.pace,3), "excess", self._excess, "run:", [(j[-18:-15], round(t-1799971200,1), j in w.answers, w.live.get(j)) for j,t in watched.run])
    return orig(self, watched, now, share)
adaptive.AnswerWatch._hit = hit
async def main():
    w = World(Cell("first_pass", 1000, "visible", 150, "stable", "small")); W[0]=w
    w.manager.start(); w._up()
    await w.clock.advance(130)
    await w.manager.stop()
asyncio.run(main())
