-- Workflows for the restart tests (tests/test_workflow_replay.py): everything they do is
-- recorded, so a run interrupted by restarts must end exactly like an uninterrupted one.
local funcs = require("funcs")
local time = require("time")
local uuid = require("uuid")
local crypto = require("crypto")
local workflow = require("workflow")

local W = {}

local KEY = "0123456789abcdef0123456789abcdef"

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

-- A checkpoint activity, then wait for a "go" message.
local function gate(name)
  funcs.call("conf:checkpoint", name)
  local inbox = process.inbox()
  while inbox:receive():topic() ~= "go" do end
end

function W.recorded(input)
  local trace = {}
  local function add(s) trace[#trace + 1] = s end
  local function step(name, value)
    local r, err = funcs.call("conf:step", name, value)
    if err then error(err) end
    add(r.name .. "=" .. tostring(r.value))
    return r
  end

  local values = {
    uuid = uuid.v4(), uuid7 = uuid.v7(), bytes = hex(crypto.random.bytes(8)),
    now = time.now():unix_nano(), version = workflow.version("recorded-change", 1, 2),
    sealed = hex(crypto.encrypt.aes("recorded secret", KEY)),  -- a random nonce: recorded too
  }
  funcs.call("conf:observe", "recorded.values", values)
  step("r.sync", 1)
  local future = funcs.async("conf:step", "r.async", 2)
  local e = funcs.new():with_options({ ["activity.start_to_close_timeout"] = "5s" }):call("conf:step", "r.executor", 3)
  add("executor=" .. e.value)
  local payload = future:response():receive()
  add("async=" .. payload:data().value)
  process.send(input.sink, "ping", 1)
  gate("recorded.1")

  local before = time.now()
  time.sleep("30ms")
  add("slept>=30ms:" .. tostring(time.now():sub(before):milliseconds() >= 30))
  time.after("10ms"):receive()
  local ticker = time.ticker("5ms")
  ticker:response():receive()
  ticker:response():receive()
  ticker:stop()
  add("timers")
  local child = workflow.exec("conf:wf_child", { n = 7, key = "r.child_exec" })
  add("child_exec=" .. child.doubled)
  gate("recorded.2")

  local events = process.events()
  local pid = process.spawn("conf:wf_child", "conf:worker", { n = 8, key = "r.child_spawn", sleep = 20 })
  local ev = events:receive()
  add("child_spawn=" .. ev.result.value.doubled .. ":" .. tostring(ev.from == pid))
  local more = { uuid = uuid.v4(), now = time.now():unix_nano(), bytes = hex(crypto.random.bytes(4)),
                 version = workflow.version("recorded-change", 1, 2) }
  funcs.call("conf:observe", "recorded.more", more)
  gate("recorded.3")

  step("r.last", 4)
  process.send(input.sink, "done")
  add("history_grew:" .. tostring(workflow.history_length() > 20))
  return { trace = trace, values = values, more = more }
end

-- Encryption in a workflow: AES-GCM and ChaCha20-Poly1305 round trips (the encryption is
-- a recorded value, decryption is plain computation).
function W.crypto(text)
  local sealed = crypto.encrypt.aes(text, KEY:sub(1, 16))
  local chacha = crypto.encrypt.chacha20(text, KEY)
  local with_aad = crypto.encrypt.aes(text, KEY, "header")
  local _, wrong = crypto.decrypt.aes(sealed, string.rep("x", 16))
  local _, bad = crypto.encrypt.chacha20(text, "short")
  return {
    aes_len = #sealed, chacha_len = #chacha,
    aes = crypto.decrypt.aes(sealed, KEY:sub(1, 16)), chacha = crypto.decrypt.chacha20(chacha, KEY),
    aad = crypto.decrypt.aes(with_aad, KEY, "header"),
    wrong_key_kind = wrong and wrong:kind(), bad_key_kind = bad and bad:kind(),
  }
end

-- A child that stops at a gate: one step, a checkpoint, then wait for "go".
function W.gated(key)
  local r = funcs.call("conf:step", key, 1)
  gate(key)
  return { step = r.name }
end

-- A parent of two gated children with known IDs: one run with exec, one spawned.
function W.gated_parent(input)
  local first, err = process.with_options({ ["temporal.workflow.id"] = input.child_id })
    :exec("conf:wf_gated", "conf:worker", input.key)
  if err then return nil, err end
  local events = process.events()
  local pid = process.with_options({ ["temporal.workflow.id"] = input.child_id .. "-spawned" })
    :spawn("conf:wf_gated", "conf:worker", input.key .. ".spawned")
  local ev = events:receive()
  local last = funcs.call("conf:step", input.key .. ".parent", 1)
  return { exec = first, spawn = ev.result.value, spawn_from = ev.from == pid, last = last.name }
end

-- Coroutines, channels, select and timers interleaved; returns the order things happened.
-- The timers are all armed up front (out of due order), so each fires at a fixed point in
-- time however often the runtime restarts, and timers that fall due while the runtime is
-- down fire in due order when it is back; everything else follows from them.
function W.interleave()
  local trace = {}
  local function log(s) trace[#trace + 1] = s end
  local t90 = time.after("90ms")
  local t30 = time.after("30ms")
  local t400 = time.after("400ms")
  local t60 = time.after("60ms")
  local jobs, results, done = channel.new(), channel.new(2), channel.new(4)
  for w = 1, 2 do
    coroutine.spawn(function()
      while true do
        local job, ok = jobs:receive()
        if not ok then break end
        log("w" .. w .. " got " .. job)
        results:send(w .. ":" .. job)
      end
      log("w" .. w .. " closed")
      done:send("w" .. w)
    end)
  end
  coroutine.spawn(function()
    t30:receive(); log("t30")
    jobs:send("a"); jobs:send("b"); jobs:send("c")
    t60:receive(); log("t60")
    jobs:send("d")
    t90:receive(); log("t90")
    jobs:send("e"); jobs:send("f")
    jobs:close()
    done:send("producer")
  end)
  local finished, timer_seen = 0, false
  while finished < 3 or not timer_seen do
    local r = channel.select({ results:case_receive(), done:case_receive(), t400:case_receive() })
    if r.channel == results then
      log("result " .. r.value)
    elseif r.channel == done then
      finished = finished + 1
      log("done " .. r.value)
    else
      timer_seen = true
      log("t400")
    end
  end
  local left = channel.select({ results:case_receive(), default = true })
  log(left.default and "drained" or ("late " .. tostring(left.value)))
  return trace
end

return W
