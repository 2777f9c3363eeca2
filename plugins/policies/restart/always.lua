-- restartPolicy: Always (the default): every exit is followed by a restart,
-- paced by the kubelet's crash-loop back-off.
return {
  name = "Always",
  decide = function() return { restart = true } end,
}
