-- The host-contract scenarios. Each runs in a Lua process on a process.host (the driver)
-- and drives the standard actors of the host under test (see reference_actors.lua); a
-- scenario passes by returning, and fails by raising an error that says what differed.
-- `cfg` names the entries: host, echo, fail, cancellable, watcher (the provider's), and
-- lua, waiter, observer (this suite's Lua helpers).
local time = require("time")

local WAIT = "5s"  -- the longest any single wait may take

---------------------------------------------------------------------------------------
-- Checks
---------------------------------------------------------------------------------------
local function show(v, depth)
  depth = depth or 0
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) ~= "table" or depth > 3 then return tostring(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. "=" .. show(v[k], depth + 1) end
  return "{" .. table.concat(parts, ", ") .. "}"
end

local function same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

local function fail(fmt, ...) error(string.format(fmt, ...), 3) end

local function eq(got, want, what)
  if not same(got, want) then fail("%s: expected %s, got %s", what, show(want), show(got)) end
end

local function check(cond, fmt, ...)
  if not cond then fail(fmt, ...) end
end

-- ok(what, f(...)): the first result of a call that returns value or nil, err.
local function ok(what, value, err)
  if err ~= nil then fail("%s failed: %s", what, tostring(err)) end
  return value
end

local function failed_with(value, err, kind, what)
  if err == nil then fail("%s: expected a %s error, got %s", what, kind, show(value)) end
  if err:kind() ~= kind then fail("%s: expected a %s error, got %s: %s", what, kind, err:kind(), err:message()) end
end

local function contains(text, part, what)
  if type(text) ~= "string" or not text:find(part, 1, true) then
    fail("%s: expected a message containing %s, got %s", what, show(part), show(text))
  end
end

---------------------------------------------------------------------------------------
-- Waiting
---------------------------------------------------------------------------------------
local function recv(ch, what)
  local r = channel.select({ ch:case_receive(), time.after(WAIT):case_receive() })
  if r.channel ~= ch then fail("timed out after %s waiting for %s", WAIT, what) end
  return r.value
end

-- The next value already queued on `ch`, or nil (no waiting).
local function peek(ch)
  local r = channel.select({ ch:case_receive(), default = true })
  if r.default then return nil end
  return r.value
end

local function reply(inbox, topic, from, what)
  local msg = recv(inbox, what)
  if msg:topic() ~= topic or (from ~= nil and msg:from() ~= from) then
    fail("%s: expected message %s from %s, got %s from %s (payload %s)", what, show(topic), tostring(from),
         show(msg:topic()), tostring(msg:from()), show(msg:payload():data()))
  end
  return msg:payload():data()
end

local function event(events, kind, from, what)
  local ev = recv(events, what)
  if ev.kind ~= kind or ev.from ~= from then
    local err = ev.result and ev.result.error
    fail("%s: expected %s from %s, got %s from %s%s", what, kind, tostring(from), tostring(ev.kind),
         tostring(ev.from), err and (" (error: " .. tostring(err) .. ")") or "")
  end
  return ev
end

local function quiet(events, what)
  local ev = peek(events)
  if ev ~= nil then fail("%s: expected no event, got %s from %s", what, tostring(ev.kind), tostring(ev.from)) end
end

---------------------------------------------------------------------------------------
-- Spawning
---------------------------------------------------------------------------------------
local function spawn(cfg, actor, ...)
  return ok("process.spawn(" .. cfg[actor] .. ")", process.spawn(cfg[actor], cfg.host, ...))
end

local function spawn_monitored(cfg, actor, ...)
  return ok("process.spawn_monitored(" .. cfg[actor] .. ")", process.spawn_monitored(cfg[actor], cfg.host, ...))
end

local function spawn_linked(cfg, actor, ...)
  return ok("process.spawn_linked(" .. cfg[actor] .. ")", process.spawn_linked(cfg[actor], cfg.host, ...))
end

-- A Lua helper process on the driver's own host.
local function helper(cfg, name, ...)
  return ok("process.spawn(" .. cfg[name] .. ")", process.spawn_monitored(cfg[name], cfg.lua, ...))
end

local function send(dest, topic, ...)
  return ok("process.send(" .. tostring(dest) .. ", " .. topic .. ")", process.send(dest, topic, ...))
end

local function stop(pid, events)
  send(pid, "stop")
  if events ~= nil then event(events, process.event.EXIT, pid, "EXIT after stop") end
end

local function host_of(pid)
  local host = pid:match("^{([^|]*)|")
  return host and (host:gsub("^.*@", ""))
end

---------------------------------------------------------------------------------------
-- Scenarios
---------------------------------------------------------------------------------------
local S = {}

function S.spawn(cfg)
  local a, b = spawn(cfg, "echo"), spawn(cfg, "echo")
  check(type(a) == "string", "process.spawn returned %s, not a PID string", show(a))
  eq(host_of(a), cfg.host, "the host part of PID " .. a)
  check(a ~= b, "two spawns returned the same PID %s", a)
  local events = process.events()
  ok("process.monitor", process.monitor(a))
  ok("process.monitor", process.monitor(b))
  stop(a, events)
  stop(b, events)
end

function S.spawn_unknown_entry(cfg)
  local pid, err = process.spawn(cfg.missing, cfg.host)
  failed_with(pid, err, errors.NOT_FOUND, "spawning an entry that does not exist")
end

function S.send_receive(cfg)
  local pid = spawn_monitored(cfg, "echo")
  local inbox, events = process.inbox(), process.events()
  local payload = { text = "h\u{e9}llo", n = 42, f = 1.5, flag = true, list = { 1, "two", 3 },
                    nested = { a = { b = "c" } } }
  eq(send(pid, "ping", payload), true, "process.send's result")
  local msg = recv(inbox, "the echo of ping")
  eq(msg:topic(), "ping", "topic of the echo")
  eq(msg:from(), pid, "msg:from() of the echo")
  eq(msg:payload():data(), payload, "payload of the echo")
  send(pid, "number", 7)
  eq(reply(inbox, "number", pid, "the echo of a number"), 7, "a number payload")
  send(pid, "nothing")
  eq(reply(inbox, "nothing", pid, "the echo of an empty message"), nil, "an empty payload")
  stop(pid, events)
end

function S.message_order(cfg)
  local pid = spawn_monitored(cfg, "echo")
  local inbox = process.inbox()
  for i = 1, 100 do send(pid, "seq", i) end
  for i = 1, 100 do eq(reply(inbox, "seq", pid, "echo #" .. i), i, "the order of echoes") end
  stop(pid, process.events())
end

function S.startup_messages(cfg)
  local spawner = process.with_message("first", 1):with_message("second", { 2 })
  local pid = ok("spawn with messages", spawner:spawn_monitored(cfg.echo, cfg.host))
  send(pid, "third", 3)
  local inbox = process.inbox()
  eq(reply(inbox, "first", pid, "the echo of the first startup message"), 1, "payload")
  eq(reply(inbox, "second", pid, "the echo of the second startup message"), { 2 }, "payload")
  eq(reply(inbox, "third", pid, "the echo of a message sent after spawn"), 3, "payload")
  stop(pid, process.events())
end

function S.many_actors(cfg)
  local pids, seen = {}, {}
  for i = 1, 50 do pids[i] = spawn(cfg, "echo") end
  for i, pid in ipairs(pids) do
    check(not seen[pid], "PID %s was given twice", pid)
    seen[pid] = i
    send(pid, "ping", i)
  end
  local inbox = process.inbox()
  for _ = 1, 50 do
    local msg = recv(inbox, "the echoes of 50 actors")
    eq(msg:payload():data(), seen[msg:from()], "the echo of " .. tostring(msg:from()))
    seen[msg:from()] = nil
  end
  for _, pid in ipairs(pids) do send(pid, "stop") end
end

function S.monitor_exit_value(cfg)
  local events = process.events()
  local pid = spawn_monitored(cfg, "echo")
  send(pid, "stop", { done = true, n = 7, words = { "a", "b" } })
  local ev = event(events, process.event.EXIT, pid, "EXIT after stop")
  eq(ev.result.error, nil, "the error of a normal exit")
  eq(ev.result.value, { done = true, n = 7, words = { "a", "b" } }, "the result of a normal exit")
end

function S.monitor_exit_error(cfg)
  local events = process.events()
  local pid = spawn_monitored(cfg, "fail", "boom 42")
  local ev = event(events, process.event.EXIT, pid, "EXIT of an actor that fails")
  check(ev.result.error ~= nil, "EXIT of an actor that failed carries no error")
  contains(ev.result.error:message(), "boom 42", "the error in EXIT")
end

function S.monitor_after_spawn(cfg)
  local events = process.events()
  local pid = spawn(cfg, "echo")
  eq(ok("process.monitor", process.monitor(pid)), true, "process.monitor's result")
  send(pid, "fail", "bad news")
  local ev = event(events, process.event.EXIT, pid, "EXIT after fail")
  check(ev.result.error ~= nil, "EXIT after fail carries no error")
  contains(ev.result.error:message(), "bad news", "the error in EXIT")
end

function S.monitor_dead_pid(cfg)
  local events = process.events()
  local pid = spawn_monitored(cfg, "echo")
  stop(pid, events)
  ok("process.monitor of an exited actor", process.monitor(pid))
  local ev = event(events, process.event.EXIT, pid, "EXIT for monitoring an exited actor")
  check(ev.result.error ~= nil and ev.result.error:kind() == errors.NOT_FOUND,
        "monitoring an exited actor: expected EXIT with a NotFound error, got %s", tostring(ev.result.error))
end

function S.unmonitor(cfg)
  local events, inbox, me = process.events(), process.inbox(), process.pid()
  local pid = spawn(cfg, "echo")
  ok("process.monitor", process.monitor(pid))
  ok("process.unmonitor", process.unmonitor(pid))
  local observer = helper(cfg, "observer", me, pid)
  reply(inbox, "watching", observer, "the observer to start")
  stop(pid)
  reply(inbox, "observed", observer, "the observer to see the exit")
  -- Only the observer's own EXIT may be queued (it ends after reporting).
  local ev = peek(events)
  while ev ~= nil do
    check(ev.from ~= pid, "after unmonitor: got %s from %s", tostring(ev.kind), pid)
    ev = peek(events)
  end
end

function S.link_down_on_failure(cfg)
  ok("process.set_options", process.set_options({ trap_links = true }))
  local events = process.events()
  local pid = spawn_linked(cfg, "echo")
  send(pid, "fail", "linked failure")
  local ev = event(events, process.event.LINK_DOWN, pid, "LINK_DOWN after a linked actor failed")
  check(ev.result.error ~= nil, "LINK_DOWN carries no error")
  contains(ev.result.error:message(), "linked failure", "the error in LINK_DOWN")
  quiet(events, "after LINK_DOWN")
end

function S.no_link_down_on_normal_exit(cfg)
  ok("process.set_options", process.set_options({ trap_links = true }))
  local events = process.events()
  local pid = spawn_linked(cfg, "echo")
  ok("process.monitor", process.monitor(pid))
  stop(pid, events)
  quiet(events, "a linked actor that ended normally (LINK_DOWN is for failures only)")
end

function S.link_failure_terminates_lua(cfg)
  local events, inbox, me = process.events(), process.inbox(), process.pid()
  local waiter = helper(cfg, "waiter", me)
  local pid = spawn(cfg, "echo")
  send(waiter, "link", pid)
  reply(inbox, "ok", waiter, "the Lua process to link to the actor")
  send(pid, "fail", "cascade")
  local ev = event(events, process.event.EXIT, waiter, "the linked Lua process to go down with the actor")
  check(ev.result.error ~= nil, "a Lua process linked to a failed actor ended normally")
  contains(ev.result.error:message(), "cascade", "the error of the linked Lua process")
end

function S.lua_failure_terminates_actor(cfg)
  local events, inbox, me = process.events(), process.inbox(), process.pid()
  local pid = spawn_monitored(cfg, "echo")
  local waiter = helper(cfg, "waiter", me)
  send(waiter, "link", pid)
  reply(inbox, "ok", waiter, "the Lua process to link to the actor")
  send(waiter, "fail", "lua side")
  local got = {}
  for _ = 1, 2 do
    local ev = recv(events, "EXIT of the Lua process and of the actor linked to it")
    eq(ev.kind, process.event.EXIT, "event kind")
    got[ev.from] = ev
  end
  check(got[waiter] ~= nil and got[pid] ~= nil, "expected EXIT from %s and %s", waiter, pid)
  check(got[pid].result.error ~= nil, "an actor linked to a failed Lua process ended normally")
end

function S.lua_normal_exit_keeps_actor(cfg)
  local events, inbox, me = process.events(), process.inbox(), process.pid()
  local pid = spawn_monitored(cfg, "echo")
  local waiter = helper(cfg, "waiter", me)
  send(waiter, "link", pid)
  reply(inbox, "ok", waiter, "the Lua process to link to the actor")
  send(waiter, "finish", "done")
  local ev = event(events, process.event.EXIT, waiter, "the Lua process to finish")
  eq(ev.result.value, "done", "the Lua process's result")
  send(pid, "ping", "still there?")
  eq(reply(inbox, "ping", pid, "the actor to answer after its linked peer ended normally"), "still there?",
     "payload")
  stop(pid, events)
end

function S.unlink(cfg)
  ok("process.set_options", process.set_options({ trap_links = true }))
  local events = process.events()
  local pid = spawn_linked(cfg, "echo")
  ok("process.unlink", process.unlink(pid))
  ok("process.monitor", process.monitor(pid))
  send(pid, "fail", "after unlink")
  event(events, process.event.EXIT, pid, "EXIT after fail")
  quiet(events, "after unlink")
end

function S.lua_traps_link_down(cfg)
  -- A Lua process that traps links gets LINK_DOWN when a linked actor fails, and goes on.
  local events, inbox, me = process.events(), process.inbox(), process.pid()
  local waiter = helper(cfg, "waiter", me, true)
  local pid = spawn(cfg, "echo")
  send(waiter, "link", pid)
  reply(inbox, "ok", waiter, "the Lua process to link to the actor")
  send(pid, "fail", "trapped")
  local down = reply(inbox, "link_down", waiter, "the trapping Lua process to report LINK_DOWN")
  eq(down.from, pid, "LINK_DOWN names the actor")
  contains(down.error, "trapped", "the error in LINK_DOWN")
  send(waiter, "finish", "alive")
  eq(event(events, process.event.EXIT, waiter, "the trapping Lua process to finish").result.value, "alive",
     "the trapping Lua process's result")
end

function S.terminate(cfg)
  local events = process.events()
  local pid = spawn_monitored(cfg, "echo")
  eq(ok("process.terminate", process.terminate(pid)), true, "process.terminate's result")
  local ev = event(events, process.event.EXIT, pid, "EXIT after terminate")
  check(ev.result.error ~= nil, "a terminated actor ended normally")
  local sent, err = process.send(pid, "ping")
  failed_with(sent, err, errors.NOT_FOUND, "sending to a terminated actor")
end

function S.terminate_link_down(cfg)
  ok("process.set_options", process.set_options({ trap_links = true }))
  local events = process.events()
  local pid = spawn_linked(cfg, "echo")
  ok("process.terminate", process.terminate(pid))
  local ev = event(events, process.event.LINK_DOWN, pid, "LINK_DOWN after terminating a linked actor")
  check(ev.result.error ~= nil, "LINK_DOWN after terminate carries no error")
end

function S.cancel(cfg)
  local events, me = process.events(), process.pid()
  local pid = spawn_monitored(cfg, "cancellable")
  eq(ok("process.cancel", process.cancel(pid, "5s", "shutting down")), true, "process.cancel's result")
  local ev = event(events, process.event.EXIT, pid, "EXIT after cancel")
  eq(ev.result.error, nil, "the error of an actor that finished on CANCEL")
  eq(ev.result.value, { reason = "shutting down", from = me }, "what the CANCEL event said (reason, from)")
end

function S.cancel_deadline(cfg)
  local events, inbox = process.events(), process.inbox()
  local pid = spawn_monitored(cfg, "echo")
  local started = time.now()
  ok("process.cancel", process.cancel(pid, "200ms"))
  send(pid, "ping", "before the deadline")
  eq(reply(inbox, "ping", pid, "an actor that ignores CANCEL to answer before the deadline"),
     "before the deadline", "payload")
  local ev = event(events, process.event.EXIT, pid, "EXIT once the cancel deadline passed")
  check(ev.result.error ~= nil, "an actor forced out at the cancel deadline ended normally")
  local waited = time.now():sub(started):seconds()
  check(waited >= 0.1, "the actor was forced out after %.3fs, before the 200ms deadline", waited)
end

function S.control_dead_pid(cfg)
  local events = process.events()
  local pid = spawn_monitored(cfg, "echo")
  stop(pid, events)
  local done, err = process.cancel(pid, "1s")
  failed_with(done, err, errors.NOT_FOUND, "canceling an exited actor")
  done, err = process.terminate(pid)
  failed_with(done, err, errors.NOT_FOUND, "terminating an exited actor")
end

function S.names_spawn_with_name(cfg)
  local events, inbox = process.events(), process.inbox()
  local name = "conformance.echo." .. process.pid():gsub("%W", "")
  local pid = ok("spawn with a name", process.with_name(name):spawn_monitored(cfg.echo, cfg.host))
  eq(ok("process.registry.lookup", process.registry.lookup(name)), pid, "the PID registered for the name")
  ok("process.send to a name", process.send(name, "ping", "by name"))
  eq(reply(inbox, "ping", pid, "the echo of a message sent by name"), "by name", "payload")
  local other, err = process.with_name(name):spawn(cfg.echo, cfg.host)
  failed_with(other, err, errors.ALREADY_EXISTS, "spawning a second actor with a name in use")
  stop(pid, events)
  local found, lerr = process.registry.lookup(name)
  failed_with(found, lerr, errors.NOT_FOUND, "looking up the name of an exited actor")
  local sent, serr = process.send(name, "ping")
  failed_with(sent, serr, errors.NOT_FOUND, "sending to the name of an exited actor")
end

function S.names_register_pid(cfg)
  local events = process.events()
  local name = "conformance.registered." .. process.pid():gsub("%W", "")
  local pid = spawn_monitored(cfg, "echo")
  eq(ok("process.registry.register", process.registry.register(name, pid)), true, "register's result")
  eq(ok("process.registry.lookup", process.registry.lookup(name)), pid, "the PID registered for the name")
  ok("process.terminate", process.terminate(pid))
  event(events, process.event.EXIT, pid, "EXIT after terminate")
  local found, err = process.registry.lookup(name)
  failed_with(found, err, errors.NOT_FOUND, "looking up the name of a terminated actor")
end

function S.send_to_dead_pid(cfg)
  local events = process.events()
  local pid = spawn_monitored(cfg, "echo")
  stop(pid, events)
  local sent, err = process.send(pid, "ping", 1)
  failed_with(sent, err, errors.NOT_FOUND, "sending to an exited actor")
  local never = "{" .. cfg.host .. "|conformance-never-spawned}"
  sent, err = process.send(never, "ping", 1)
  failed_with(sent, err, errors.NOT_FOUND, "sending to a PID the host never gave out")
end

-- The provider's actor as the one that watches: monitors and links to Lua processes.
local function watcher_op(w, op, target, inbox)
  ok("process.send(" .. op .. ")", process.send(w, op, target))
  eq(reply(inbox, "ok", w, "the watcher to " .. op .. " " .. target), target, "the watcher's answer")
end

function S.actor_monitors_lua(cfg)
  local events, inbox, me = process.events(), process.inbox(), process.pid()
  local w = spawn_monitored(cfg, "watcher", me)
  local a = helper(cfg, "waiter", me)
  watcher_op(w, "monitor", a, inbox)
  send(a, "finish", { v = 1 })
  local got = reply(inbox, "exit", w, "the watcher's report of a Lua process's EXIT")
  eq(got.from, a, "EXIT names the Lua process")
  eq(got.value, { v = 1 }, "the result in EXIT")
  eq(got.error, nil, "the error in EXIT of a normal exit")
  local b = helper(cfg, "waiter", me)
  watcher_op(w, "monitor", b, inbox)
  send(b, "fail", "lua boom")
  got = reply(inbox, "exit", w, "the watcher's report of a failed Lua process's EXIT")
  eq(got.from, b, "EXIT names the Lua process")
  contains(got.error, "lua boom", "the error in EXIT")
  for _ = 1, 2 do recv(events, "the Lua helpers' exits") end
  stop(w, events)
end

function S.actor_unmonitors_lua(cfg)
  local events, inbox, me = process.events(), process.inbox(), process.pid()
  local w = spawn_monitored(cfg, "watcher", me)
  local a, b = helper(cfg, "waiter", me), helper(cfg, "waiter", me)
  watcher_op(w, "monitor", a, inbox)
  watcher_op(w, "unmonitor", a, inbox)
  watcher_op(w, "monitor", b, inbox)
  send(a, "finish", "a")
  event(events, process.event.EXIT, a, "the first Lua process to finish")
  send(b, "finish", "b")
  local got = reply(inbox, "exit", w, "the watcher's report")
  eq(got.from, b, "the only EXIT the watcher reports (the other was unmonitored)")
  event(events, process.event.EXIT, b, "the second Lua process to finish")
  stop(w, events)
end

function S.actor_links_lua(cfg)
  local events, inbox, me = process.events(), process.inbox(), process.pid()
  local w = spawn_monitored(cfg, "watcher", me)
  local a, b = helper(cfg, "waiter", me), helper(cfg, "waiter", me)
  watcher_op(w, "link", a, inbox)
  watcher_op(w, "link", b, inbox)
  send(a, "finish", "normal")
  event(events, process.event.EXIT, a, "the first Lua process to finish")
  send(b, "fail", "lua link boom")
  local got = reply(inbox, "link_down", w, "the watcher's report of LINK_DOWN")
  eq(got.from, b, "LINK_DOWN names the failed Lua process (a normal exit sends none)")
  contains(got.error, "lua link boom", "the error in LINK_DOWN")
  event(events, process.event.EXIT, b, "the second Lua process to fail")
  send(w, "stop", "trapped")
  eq(event(events, process.event.EXIT, w, "the watcher, which traps links, to stop").result.value, "trapped",
     "the watcher's result")
end

function S.actor_unlinks_lua(cfg)
  local events, inbox, me = process.events(), process.inbox(), process.pid()
  local w = spawn_monitored(cfg, "watcher", me)
  local a, b = helper(cfg, "waiter", me), helper(cfg, "waiter", me)
  watcher_op(w, "link", a, inbox)
  watcher_op(w, "unlink", a, inbox)
  watcher_op(w, "monitor", b, inbox)
  send(a, "fail", "unlinked")
  event(events, process.event.EXIT, a, "the first Lua process to fail")
  send(b, "finish", "b")
  local got = reply(inbox, "exit", w, "the watcher's report")
  eq(got.from, b, "the only event the watcher reports (the failed one was unlinked)")
  event(events, process.event.EXIT, b, "the second Lua process to finish")
  stop(w, events)
end

function S.actor_failure_reaches_linked_lua(cfg)
  local events, inbox, me = process.events(), process.inbox(), process.pid()
  local w = spawn_monitored(cfg, "watcher", me)
  local a = helper(cfg, "waiter", me)
  watcher_op(w, "link", a, inbox)
  send(w, "fail", "watcher down")
  local got = {}
  for _ = 1, 2 do
    local ev = recv(events, "EXIT of the watcher and of the Lua process linked to it")
    got[ev.from] = ev
  end
  check(got[w] ~= nil and got[a] ~= nil, "expected EXIT from %s and %s", w, a)
  check(got[a].result.error ~= nil, "a Lua process linked to a failed actor ended normally")
  contains(got[a].result.error:message(), "watcher down", "the error of the linked Lua process")
end

-- Leaves actors running, for the test that stopping the host ends them.
function S.leave_running(cfg)
  local me = process.pid()
  spawn(cfg, "echo")
  spawn(cfg, "cancellable")
  spawn(cfg, "watcher", me)
  return true
end

---------------------------------------------------------------------------------------
-- Entries
---------------------------------------------------------------------------------------
local function driver(name, cfg)
  local scenario = S[name]
  if scenario == nil then error("no conformance scenario named " .. tostring(name)) end
  scenario(cfg)
  return true
end

-- waiter(driver [, trap]): a Lua process the scenarios tell what to do: "link" a PID
-- (answers "ok"), "finish" with a result, "fail" with an error. With `trap` it traps
-- links and reports each LINK_DOWN to the driver as "link_down" {from, error}.
local function waiter(parent, trap)
  if trap then process.set_options({ trap_links = true }) end
  local inbox, events = process.inbox(), process.events()
  while true do
    local r = channel.select({ inbox:case_receive(), events:case_receive() })
    if r.channel == events then
      local ev = r.value
      if ev.kind == process.event.LINK_DOWN then
        process.send(parent, "link_down", { from = ev.from, error = ev.result.error:message() })
      end
    else
      local msg = r.value
      local topic, data = msg:topic(), msg:payload():data()
      if topic == "link" then
        ok("process.link", process.link(data))
        process.send(msg:from(), "ok", data)
      elseif topic == "finish" then
        return data
      elseif topic == "fail" then
        error(errors.new({ kind = errors.INTERNAL, message = data }))
      end
    end
  end
end

-- observer(driver, target): monitors `target`, says "watching", and "observed" on its EXIT.
local function observer(parent, target)
  local events = process.events()
  ok("process.monitor", process.monitor(target))
  process.send(parent, "watching", target)
  local ev = recv(events, "EXIT of " .. target)
  process.send(parent, "observed", { from = ev.from })
  return true
end

-- run(name, cfg): the function a test calls; runs the scenario in a driver process.
local function run(name, cfg)
  local result, err = process.exec(cfg.driver, cfg.lua, name, cfg)
  if err ~= nil then error(err) end
  return result
end

local names = {}
for name in pairs(S) do names[#names + 1] = name end
table.sort(names)

return { driver = driver, waiter = waiter, observer = observer, run = run,
         scenarios = function() return names end }
