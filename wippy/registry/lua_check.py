"""Load-time checks of Lua sources: syntax (with the Lua line) and the exported method.

Runs in its own throwaway Lua state: the source's top level is executed with every global
and module replaced by an inert stub and an instruction budget, only to see what the
method name resolves to in the returned value. If that cannot tell (the chunk fails, or
the name resolves to a stub), the check falls back to looking for the name in the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lupa import lua54

# Returns (false, syntax error, nil) or (true, verdict, exported names) where verdict is
# "found", "missing" (no function of that name), "nothing" (the chunk returns nil) or
# "unknown" (the stubbed run could not tell).
_PROBE = r"""
local src, name, method = ...
local stub
stub = setmetatable({}, {
  __index = function() return stub end, __call = function() return stub end,
  __concat = function() return "" end, __add = function() return 0 end,
})
local passthrough = {
  pairs = true, ipairs = true, next = true, select = true, type = true, tostring = true,
  tonumber = true, setmetatable = true, getmetatable = true, rawget = true, rawset = true,
  rawequal = true, rawlen = true, assert = true, unpack = true,
  table = true, string = true, math = true, utf8 = true,
}
local env = setmetatable({}, { __index = function(_, k)
  if k == "require" then return function() return stub end end
  if passthrough[k] then return _G[k] end
  return stub
end })
local chunk, err = load("local _ENV = ...; " .. src, name, "t", {})
if not chunk then return false, err, nil end
local co = coroutine.create(function()
  local mod = chunk(env)
  if type(mod) == "function" then return "found" end
  if mod == nil then return "nothing" end
  if type(mod) ~= "table" or mod == stub then return "unknown" end
  local names = {}
  for k, v in pairs(mod) do
    if type(k) == "string" and type(v) == "function" then names[#names + 1] = k end
  end
  table.sort(names)
  if method == nil then return "unknown", names end
  local v = mod[method]
  if type(v) == "function" then return "found", names end
  if v == stub then return "unknown", names end
  return "missing", names
end)
debug.sethook(co, function() error("budget") end, "", 200000)
local ok, verdict, names = coroutine.resume(co)
if not ok then return true, "unknown", nil end
return true, verdict, names
"""

_LOCATION = re.compile(r"^.*?:(\d+): ")


@dataclass
class LuaCheck:
    syntax_error: str | None = None  # the message without its "file:line: " prefix
    line: int | None = None
    method_found: bool | None = None  # None: no method asked for
    returns_nothing: bool = False  # the chunk ran to its end and returned nil
    exported: list[str] | None = None  # function names in the returned table, when known


class LuaChecker:
    """One Lua state reused for every source a load checks (creating one is the slow part)."""

    def __init__(self) -> None:
        self._lua = lua54.LuaRuntime(encoding=None, register_eval=False, register_builtins=False)
        self._probe = self._lua.execute(f"return function(...) {_PROBE} end")

    def check(self, source: str, chunkname: str, method: str | None = None) -> LuaCheck:
        if source.startswith("#!"):
            source = "--" + source
        ok, verdict, names = self._probe(
            source.encode("utf-8"), f"@{chunkname}".encode(), method.encode() if method else None
        )
        if not ok:
            message = verdict.decode("utf-8", "replace")
            m = _LOCATION.match(message)
            if m is None:
                return LuaCheck(syntax_error=message)
            return LuaCheck(syntax_error=message[m.end():], line=int(m.group(1)))
        exported = [n.decode() for n in names.values()] if names is not None else None
        if verdict == b"nothing":
            return LuaCheck(method_found=False if method else None, returns_nothing=True)
        found = {b"found": True, b"missing": False}.get(verdict)
        if found is None and method:
            found = method_defined_in_text(source, method)
        return LuaCheck(method_found=found, exported=exported)


def method_defined_in_text(source: str, method: str) -> bool:
    return re.search(rf"\b{re.escape(method)}\b", source) is not None
