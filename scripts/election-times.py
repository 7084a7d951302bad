import json,sys,glob
# For each fault that hit the active controller (crash/power_loss): time until a new leader (higher epoch) reports.
res=[]
for f in sys.argv[1:]:
    ops=[json.loads(l) for l in open(f)]
    states=[json.loads(l) for l in open(f+".states.jsonl")]
    raft=[s for s in states if "role" in s]
    for o in ops:
        if o.get("type")=="info" and o.get("f")=="fault" or o.get("kind") in ("crash","power_loss"):
            pass
    faults=[o for o in ops if o.get("detail",{}).get("active_controller") and o.get("phase")=="start"]
    for fo in faults:
        t=fo["time_us"]
        before=[s for s in raft if s["time_us"]<=t and s["role"]=="leader"]
        ep=max(s["epoch"] for s in before)
        after=[s for s in raft if s["time_us"]>t and s["role"]=="leader" and s["epoch"]>ep]
        if after:
            res.append((after[0]["time_us"]-t)/1000)
res.sort()
print(len(res),"failovers; new leader after ms: min %.0f median %.0f p90 %.0f max %.0f"%(res[0],res[len(res)//2],res[int(len(res)*0.9)],res[-1]))
