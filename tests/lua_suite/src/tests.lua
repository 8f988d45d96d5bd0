-- Test entries: each method is one test (meta.type: test); it returns true or raises.
local T = {}

function T.spawn_and_send()
  local value, err = process.exec("suite:driver", "suite:host", "monitor_exit")
  assert(err == nil, tostring(err))
  -- a function can spawn and send, but it has no inbox: use exec for request/response
  local pid = process.spawn("suite:echo", "suite:host")
  assert(pid:match("^{suite:host|.+}$"), pid)
  assert(process.send(pid, "stop") == true)
  local ok, send_err = process.send(pid, "@inbox", 1)
  assert(ok == nil and send_err:kind() == "Invalid")
  return value
end

function T.monitor_exit()
  local ok, err = process.exec("suite:driver", "suite:host", "monitor_exit")
  assert(ok == true, tostring(err))
  return true
end

function T.trapped_link()
  local ok, err = process.exec("suite:driver", "suite:host", "trapped_link")
  assert(ok == true, tostring(err))
  return true
end

function T.link_cascade()
  local ok, err = process.exec("suite:driver", "suite:host", "link_cascade")
  assert(ok == true, tostring(err))
  return true
end

function T.names()
  local pid = process.with_name("suite-echo"):spawn("suite:echo", "suite:host")
  assert(process.registry.lookup("suite-echo") == pid)
  local _, err = process.with_name("suite-echo"):spawn("suite:echo", "suite:host")
  assert(err:kind() == "AlreadyExists", tostring(err))
  assert(process.terminate("suite-echo") == true)
  local gone, lookup_err = process.registry.lookup("suite-echo")
  assert(gone == nil and lookup_err:kind() == "NotFound")
  return true
end

function T.spawner_context()
  local base = process.with_context({ tenant = "acme" })
  local a = base:exec("suite:worker", "suite:host", 1)
  local b = base:with_context({ tenant = "other" }):exec("suite:worker", "suite:host", 2, 3)
  local c = base:exec("suite:worker", "suite:host")
  assert(a.tenant == "acme" and a.args[1] == 1)
  assert(b.tenant == "other" and b.args[1] == 2 and b.args[2] == 3)
  assert(c.tenant == "acme" and #c.args == 0, "the base spawner is unchanged")
  return true
end

function T.select_in_process()
  local ok, err = process.exec("suite:driver", "suite:host", "select")
  assert(ok == true, tostring(err))
  return true
end

return T
