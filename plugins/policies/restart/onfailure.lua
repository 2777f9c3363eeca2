-- restartPolicy: OnFailure: restart after a non-zero exit (a liveness or
-- startup kill always counts as a failure), never after a clean exit 0.
return {
  name = "OnFailure",
  restarts = "failure", -- the kubelet may let the runtime restart at once
  decide = function(_, _, exit)
    return { restart = exit.killed_by ~= nil or exit.exit_code ~= 0 }
  end,
}
