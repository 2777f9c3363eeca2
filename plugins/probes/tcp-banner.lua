-- Probe check "tcp-banner": connect, optionally send a line, and expect the
-- reply line to start with a prefix: a health check for line protocols
-- (SMTP "220", Redis "+PONG" after "PING", SSH "SSH-2.0") where a bare
-- tcpSocket probe would pass as soon as the kernel accepts.
--
--   readinessProbe:
--     lua: { check: tcp-banner, args: { port: 6379, send: "PING\r\n", expect: "+PONG" } }
--
-- args: port (number or container port name), expect (prefix; required),
-- send (text written first), max (bytes read at most; default 1024).
-- ctx.state.last keeps the last reply seen, for the failure message.
local probe = require("moonlet.probe")

local function show(s)
  return '"' .. s:gsub("\r", "\\r"):gsub("\n", "\\n") .. '"'
end

return {
  name = "tcp-banner",
  check = function(ctx, args)
    assert(type(args.expect) == "string", "tcp-banner: args.expect is required")
    local host, port = ctx.port_for(args.port)
    if not host then return false, port end
    local reply, err = probe.exchange{ host = host, port = port, send = args.send,
      read = args.max or 1024, timeout = ctx.timeout }
    if not reply then return false, err end
    local previous = ctx.state.last
    ctx.state.last = reply
    if reply:sub(1, #args.expect) == args.expect then return true end
    local line = reply:gsub("[\r\n]+$", "")
    local msg = string.format("reply %s does not start with %s", show(line), show(args.expect))
    if previous and previous ~= reply then
      msg = msg .. " (was " .. show((previous:gsub("[\r\n]+$", ""))) .. ")"
    end
    return false, msg
  end,
}
