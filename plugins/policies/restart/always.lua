-- restartPolicy: Always (the default): every exit is followed by a restart,
-- paced by the kubelet's crash-loop back-off.
return {
  name = "Always",
  restarts = "any", -- the kubelet may let the runtime restart at once
  decide = function() return { restart = true } end,
}
