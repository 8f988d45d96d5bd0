-- io: the terminal of a process run by a terminal.host (`wippy run <command>`): stdout,
-- stderr, stdin and the command-line arguments. Elsewhere every function but io.args
-- returns nil, err (Unavailable "no terminal context"); io.args returns {}.
local rt = ...
local call = rt.call
local tostring, select, concat, type, math_type = tostring, select, table.concat, type, math.type

local M = {}

local function joined(sep, ...)
  local n = select("#", ...)
  if n == 1 then return tostring((...)) end
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  return concat(parts, sep)
end

-- Each argument as text, nothing between or after: true, or nil, err.
function M.write(...) return call("io.write", 1, joined("", ...)) end

-- Arguments separated by tabs, then a newline, to stdout / stderr.
function M.print(...) return call("io.write", 1, joined("\t", ...) .. "\n") end
function M.eprint(...) return call("io.write", 2, joined("\t", ...) .. "\n") end

function M.flush() return call("io.flush") end

-- Up to n bytes of stdin (default 1024; n <= 0 means 1024); waits for input.
function M.read(n)
  if type(n) == "number" and math_type(n) == "float" then n = math.floor(n) end
  if type(n) ~= "number" or n <= 0 then n = 1024 end
  return call("io.read", n)
end

-- One line of stdin without its line end; at end of input the last partial line, then nil, err.
function M.readline() return call("io.read", nil) end

-- Raw mode on (default) or off; reference-counted, reset when the process ends.
function M.raw(enable)
  if enable == nil then enable = true end
  return call("io.raw", enable and true or false)
end

function M.args() return call("io.args") end

return M
