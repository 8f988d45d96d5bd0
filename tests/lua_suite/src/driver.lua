-- Runs one scenario inside a process (tests are functions; monitors and links need a process).
local scenarios = {}

function scenarios.monitor_exit()
  local events = process.events()
  local pid = process.spawn_monitored("suite:echo", "suite:host")
  process.send(pid, "stop")
  local ev = events:receive()
  assert(ev.kind == process.event.EXIT, "pid.exit event")
  assert(ev.from == pid, "from the child")
  assert(ev.result.value == "stopped" and ev.result.error == nil, "normal exit")

  pid = process.spawn_monitored("suite:echo", "suite:host")
  process.send(pid, "crash")
  ev = events:receive()
  assert(ev.result.error:kind() == "Conflict", "crash is an error")
  return true
end

function scenarios.trapped_link()
  process.set_options({ trap_links = true })
  local pid = process.spawn_linked("suite:echo", "suite:host")
  process.send(pid, "crash")
  local ev = process.events():receive()
  assert(ev.kind == process.event.LINK_DOWN, "LINK_DOWN, got " .. tostring(ev.kind))
  assert(ev.from == pid)
  assert(ev.result.error:message() == "echo crashed")
  return true
end

function scenarios.link_cascade()
  local inbox, events = process.inbox(), process.events()
  local first = process.spawn_monitored("suite:chain", "suite:host", process.pid(), 3)
  local last
  for _ = 1, 3 do
    local msg = inbox:receive()
    if msg:payload():data() == 1 then last = msg:from() end
  end
  process.send(last, "go")
  local ev = events:receive()
  assert(ev.from == first, "the head of the chain went down")
  assert(ev.result.error:message():find("end of the chain", 1, true), ev.result.error:message())
  return true
end

function scenarios.select()
  -- one select over the inbox, the events channel and a local channel
  local inbox, events, local_ch = process.inbox(), process.events(), channel.new(1)
  local pid = process.spawn_monitored("suite:echo", "suite:host")
  process.send(pid, "ping", 1)
  local_ch:send("local")
  local seen = {}
  for _ = 1, 3 do
    local r = channel.select({ inbox:case_receive(), events:case_receive(), local_ch:case_receive() })
    if r.channel == inbox then
      seen.inbox = r.value:payload():data()
      process.send(pid, "stop")
    elseif r.channel == events then
      seen.events = r.value.kind
    else
      seen.local_ch = r.value
    end
  end
  assert(seen.inbox == 1 and seen.events == process.event.EXIT and seen.local_ch == "local")
  local r = channel.select({ inbox:case_receive(), default = true })
  assert(r.default, "nothing left")
  local_ch:close()
  local v, ok = local_ch:receive()
  assert(v == nil and ok == false, "closed channel")
  return true
end

local function main(name)
  return scenarios[name]()
end

return { main = main }
