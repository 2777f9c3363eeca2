-- moonlet.core.sys.lock_file: the data dir's one-server lock (flock), as
-- `moonlet server` takes it before opening the store.
require("moonlet_core")
local sys = require("moonlet.core.sys")

describe("sys.lock_file", function()
  local dir, path
  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(sys.mkdir(dir, 448))
    path = dir .. "/server.lock"
  end)
  after_each(function()
    os.remove(path)
    os.remove(dir)
  end)

  it("is exclusive and names its holder", function()
    local first = assert(sys.lock_file(path))
    -- flock locks belong to the open file: a second open conflicts even
    -- in the same process, as a second server would.
    local second, err, code, holder = sys.lock_file(path)
    assert.is_nil(second)
    assert.truthy(code == "EAGAIN" or code == "EWOULDBLOCK", tostring(code))
    assert.truthy(err:find(path, 1, true))
    assert.are.equal(sys.getpid(), holder)
    first:release()
    first:release() -- a second release is harmless
    local again = assert(sys.lock_file(path))
    again:release()
  end)

  it("is released when its handle is collected", function()
    do local _ = assert(sys.lock_file(path)) end
    collectgarbage()
    collectgarbage()
    assert(sys.lock_file(path)):release()
  end)

  it("fails with the errno name when the file cannot be made", function()
    local lock, err, code = sys.lock_file(dir .. "/no/such/dir/lock")
    assert.is_nil(lock)
    assert.are.equal("ENOENT", code)
    assert.truthy(err:find("no/such/dir", 1, true))
  end)
end)
