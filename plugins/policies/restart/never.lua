-- restartPolicy: Never: an exited container stays terminated; the pod ends
-- Succeeded or Failed once all its containers have exited.
return {
  name = "Never",
  decide = function() return { restart = false } end,
}
