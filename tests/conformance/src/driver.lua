-- A process on the ephemeral host that drives a workflow scenario needing an inbox or
-- events (replies, monitors, links). `main(scenario, ...)` returns true or raises.
local uuid = require("uuid")

local D = {}

local WORKER = "conf:worker"

local function expect(topic)
  local msg = process.inbox():receive()
  assert(msg:topic() == topic, "expected message " .. topic .. ", got " .. msg:topic())
  return msg:payload():data(), msg
end

-- kind: a key of process.event (EXIT, LINK_DOWN, CANCEL)
local function next_event(kind)
  local ev = process.events():receive()
  assert(ev.kind == process.event[kind], "expected a " .. kind .. " event, got " .. tostring(ev.kind))
  return ev
end

local function unique(prefix) return prefix .. "-" .. uuid.v4() end

-- Signals: inbox, listeners, replies to msg:from(), receive_timeout, try_receive.
function D.signals()
  local pid = assert(process.spawn_monitored("conf:wf_signals", WORKER, process.pid()))
  assert(expect("ready") == 1)
  assert(process.send(pid, "hello", { n = 1 }))
  local ack = expect("inbox_ack")
  assert(ack.n == 1, "inbox reply")
  assert(process.send(pid, "req", "ping"))
  local echo = expect("req_ack")
  assert(echo.echo == "ping", "listener reply")
  assert(process.send(pid, "raw", { x = 42 }))
  assert(expect("ready") == 2)
  assert(process.send(pid, "late", "late-data"))
  assert(expect("ready") == 3)
  assert(process.send(pid, "q", "q1"))
  assert(process.send(pid, "q", "q2"))
  local ev = next_event("EXIT")
  assert(ev.from == pid and ev.result.error == nil, tostring(ev.result.error))
  local out = ev.result.value
  assert(out.try_empty.msg == nil and out.try_empty.ok == false, "try_receive on an empty inbox")
  assert(out.inbox.topic == "hello" and out.inbox.data.n == 1 and out.inbox.from_driver, "inbox message")
  assert(out.req.data == "ping" and out.req.from_driver, "listener with {message = true}")
  assert(out.raw.x == 42, "raw listener gets the payload data")
  assert(out.timeout.msg == nil and out.timeout.ok == false, "receive_timeout timed out")
  assert(out.late == "late-data", "receive_timeout got the late message")
  assert(out.queued[1] == "q1" and out.queued[2] == "q2", "try_receive found the queued message")
  return true
end

-- Startup messages (with_message) come first, also when the start finds a running workflow.
function D.start_messages()
  local name = unique("counter")
  local first = process.with_options({}):with_name(name)
    :with_message("increment", { amount = 2 }):with_message("increment", { amount = 1 })
  local pid = assert(first:spawn_monitored("conf:wf_counter", WORKER, { initial = 10 }))
  local second = process.with_options({}):with_name(name):with_message("increment", { amount = 4 })
  local pid2, err = second:spawn("conf:wf_counter", WORKER, { initial = 999 })
  assert(pid2 == pid, "with_name dedupes the start: " .. tostring(pid2) .. " " .. tostring(err))
  assert(process.send(pid, "finish"))
  local ev = next_event("EXIT")
  local out = ev.result.value
  assert(ev.result.error == nil, tostring(ev.result.error))
  assert(out.total == 17, "initial 10 + 2 + 1 + 4 (input of the second start ignored), got " .. tostring(out.total))
  assert(table.concat(out.log, ",") == "increment,increment,increment,finish", table.concat(out.log, ","))
  return true
end

-- Start messages and messages sent before the workflow listens reach its listener; its
-- replies come back in order.
function D.replies()
  local pid = assert(process.with_options({}):with_message("req", 1):with_message("req", 2)
    :spawn_monitored("conf:wf_replier", WORKER, { delay_ms = 30 }))
  assert(process.send(pid, "req", 3))  -- (the workflow is still asleep, not listening yet)
  for n = 1, 3 do
    assert(expect("ack") == n, "ack " .. n)
    assert(expect("ok") == n, "ok " .. n)
  end
  assert(process.send(pid, "finish"))
  assert(expect("bye") == 3, "bye")
  local ev = next_event("EXIT")
  assert(ev.from == pid and ev.result.error == nil and ev.result.value.served == 3, tostring(ev.result.error))
  return true
end

-- Conflict and reuse policies of explicit workflow IDs.
function D.start_options()
  local id = unique("opt")
  local function with(opts)
    opts["temporal.workflow.id"] = id
    return process.with_options(opts)
  end
  local pid = assert(with({}):spawn_monitored("conf:wf_waiter", WORKER, "first"))
  assert(pid:find(id, 1, true), "the PID names the workflow ID: " .. pid)

  -- use_existing (the default): the same PID
  assert(with({}):spawn("conf:wf_waiter", WORKER, "again") == pid, "use_existing")
  -- upstream's canonical key workflow.id works too, and wins over the legacy one
  assert(process.with_options({ ["workflow.id"] = id }):spawn("conf:wf_waiter", WORKER) == pid, "workflow.id")
  assert(process.with_options({ ["workflow.id"] = id, ["temporal.workflow.id"] = unique("other") })
    :spawn("conf:wf_waiter", WORKER) == pid, "workflow.id wins over temporal.workflow.id")
  assert(with({ ["temporal.workflow.id_conflict_policy"] = "use_existing" }):spawn("conf:wf_waiter", WORKER) == pid)
  -- fail / execution_error_when_already_started
  local none, err = with({ ["temporal.workflow.id_conflict_policy"] = "fail" }):spawn("conf:wf_waiter", WORKER)
  assert(none == nil and err ~= nil, "fail policy must refuse")
  local none2, err2 = with({ ["temporal.workflow.execution_error_when_already_started"] = true })
    :spawn("conf:wf_waiter", WORKER)
  assert(none2 == nil and err2 ~= nil, "execution_error_when_already_started must refuse")

  -- terminate_existing: the first run ends with an error, a new run takes the ID
  local pid3 = assert(with({ ["temporal.workflow.id_conflict_policy"] = "terminate_existing" })
    :spawn_monitored("conf:wf_waiter", WORKER, "third"))
  local ev = next_event("EXIT")
  assert(ev.from == pid and ev.result.error ~= nil, "the first run was terminated")
  assert(process.send(pid3, "stop"))
  ev = next_event("EXIT")
  assert(ev.result.value.input == "third" and ev.result.value.topic == "stop", "the new run completed")

  -- reuse policies once the ID is closed
  local none4, err4 = with({ ["temporal.workflow.id_reuse_policy"] = "reject_duplicate" })
    :spawn("conf:wf_waiter", WORKER)
  assert(none4 == nil and err4 ~= nil, "reject_duplicate")
  local none5, err5 = with({ ["temporal.workflow.id_reuse_policy"] = "allow_duplicate_failed_only" })
    :spawn("conf:wf_waiter", WORKER)
  assert(none5 == nil and err5 ~= nil, "allow_duplicate_failed_only after a completed run")
  local pid6 = assert(with({ ["temporal.workflow.id_reuse_policy"] = "allow_duplicate" })
    :spawn_monitored("conf:wf_waiter", WORKER, "sixth"))
  assert(process.send(pid6, "stop"))
  ev = next_event("EXIT")
  assert(ev.result.value.input == "sixth", "allow_duplicate started a new run")
  return true
end

-- Monitors and links from an ordinary process; post-start monitor, unmonitor. A workflow
-- that completes normally tells its links too, with an EXIT (upstream's durable semantics).
function D.watch()
  -- a link (without trap_links) to a workflow that completes: EXIT with the result, and
  -- the linked process carries on
  local linked = assert(process.spawn_linked("conf:wf_waiter", WORKER, "linked-ok"))
  assert(process.send(linked, "stop"))
  local done = next_event("EXIT")
  assert(done.from == linked and done.result.error == nil and done.result.value.input == "linked-ok",
    "EXIT to a link when the workflow completes")
  local late = assert(process.spawn("conf:wf_waiter", WORKER, "late-link-ok"))
  assert(process.link(late))
  assert(process.send(late, "stop"))
  done = next_event("EXIT")
  assert(done.from == late and done.result.value.input == "late-link-ok", "EXIT to a post-start link")

  -- spawn_monitored: EXIT with the result
  local pid = assert(process.spawn_monitored("conf:wf_waiter", WORKER, "m"))
  assert(process.send(pid, "stop"))
  local ev = next_event("EXIT")
  assert(ev.from == pid and ev.result.value.topic == "stop", "EXIT carries the result")

  -- process.monitor after the start
  local pid2 = assert(process.spawn("conf:wf_waiter", WORKER, "late-monitor"))
  assert(process.monitor(pid2))
  assert(process.send(pid2, "stop"))
  ev = next_event("EXIT")
  assert(ev.from == pid2 and ev.result.value.input == "late-monitor")

  -- unmonitor: no event any more
  local pid3 = assert(process.spawn_monitored("conf:wf_waiter", WORKER, "unmonitored"))
  assert(process.unmonitor(pid3))
  assert(process.send(pid3, "stop"))

  -- links: with trap_links a terminated workflow arrives as LINK_DOWN
  assert(process.set_options({ trap_links = true }))
  local pid4 = assert(process.spawn_linked("conf:wf_waiter", WORKER, "linked"))
  assert(process.terminate(pid4))
  ev = next_event("LINK_DOWN")
  assert(ev.from == pid4 and ev.result.error ~= nil, "LINK_DOWN for an abnormal end")

  local pid5 = assert(process.spawn("conf:wf_waiter", WORKER, "late-link"))
  assert(process.link(pid5))
  assert(process.terminate(pid5))
  ev = next_event("LINK_DOWN")
  assert(ev.from == pid5, "post-start link")
  -- nothing else arrived (the unmonitored workflow stayed silent)
  local extra = process.events():receive_timeout("20ms")
  assert(extra == nil, "unexpected event " .. tostring(extra and extra.kind))
  return true
end

-- process.terminate and process.cancel of a workflow.
function D.stop_workflows()
  local pid = assert(process.spawn_monitored("conf:wf_waiter", WORKER, "t"))
  assert(process.terminate(pid))
  local ev = next_event("EXIT")
  assert(ev.from == pid and ev.result.value == nil and ev.result.error ~= nil, "terminated with an error")
  assert(ev.result.error:kind() == "Canceled", ev.result.error:kind())

  -- a workflow that handles CANCEL finishes its cleanup and returns normally
  local key = unique("cancel")
  local pid2 = assert(process.spawn_monitored("conf:wf_cancellable", WORKER, { key = key }))
  assert(process.cancel(pid2, "5s", "user asked"))
  ev = next_event("EXIT")
  assert(ev.from == pid2 and ev.result.error == nil, tostring(ev.result.error))
  assert(ev.result.value.canceled and ev.result.value.reason == "user asked", "cancel reason")
  assert(ev.result.value.cleanup == key .. ".cleanup")

  -- one that ignores CANCEL is terminated at the deadline
  local pid3 = assert(process.spawn_monitored("conf:wf_waiter", WORKER, "ignores-cancel"))
  assert(process.cancel(pid3, "30ms"))
  ev = next_event("EXIT")
  assert(ev.from == pid3 and ev.result.error ~= nil, "terminated at the cancel deadline")
  return true
end

-- Names between workflows that are not parent and child; monitors and links refused.
function D.between_workflows()
  local me = process.pid()
  -- a name registered by a workflow: messages reach it, and it is released when it ends
  local name = unique("named")
  local named = assert(process.spawn("conf:wf_named", WORKER, { name = name, driver = me }))
  assert(expect("registered") == named, "registered by the workflow")
  assert(process.registry.lookup(name) == named, "the name resolves to the workflow")
  assert(process.send(name, "hello", { n = 1 }))
  local ack, msg = expect("named_ack")
  assert(ack.n == 1 and msg:from() == named, "the workflow got the message sent to its name")
  local released = false
  for _ = 1, 300 do  -- the workflow returns right after its reply
    if process.registry.lookup(name) == nil then released = true break end
    process.inbox():receive_timeout("10ms")
  end
  assert(released, "the name is released when the workflow ends")

  -- a workflow may not monitor or link another workflow: nil and an Invalid error each
  local a = assert(process.spawn("conf:wf_waiter", WORKER, "watched"))
  local seen, err = process.exec("conf:wf_watcher", WORKER, { target = a })
  assert(err == nil, tostring(err))
  for _, call in ipairs({ "monitor", "link", "unmonitor", "unlink" }) do
    local r = seen[call]
    assert(r.ok == nil and r.kind == "Invalid" and r.retryable == false, call .. " is refused: " .. tostring(r.kind))
    assert(r.message:find("process." .. call .. " is not supported in workflow context", 1, true), r.message)
  end
  assert(process.send(a, "stop"))
  return true
end

function D.main(scenario, ...)
  local fn = D[scenario]
  if not fn then error("unknown scenario " .. tostring(scenario)) end
  return fn(...)
end

return D
