-- Scale-down policy "oldest-first": on scale-down remove the pods that have
-- existed longest (by creationTimestamp, then name), e.g. to recycle
-- long-running workers. Select it on a ReplicaSet with the annotation
-- scaledown.moonlet.dev/policy: oldest-first
return {
  name = "oldest-first",
  less = function(a, b, info)
    local ta = info.time(a.metadata.creationTimestamp) or math.huge
    local tb = info.time(b.metadata.creationTimestamp) or math.huge
    if ta ~= tb then return ta < tb end
    return (a.metadata.name or "") < (b.metadata.name or "")
  end,
}
