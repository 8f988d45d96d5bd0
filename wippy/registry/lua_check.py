"""Load-time checks of Lua sources: syntax (with the Lua line) and the exported method.

Runs in its own throwaway Lua state: the source's top level is executed with every global
and module replaced by an inert stub and an instruction budget, only to see which names
the returned table exports. If that cannot tell (the chunk fails or returns something
else), the check falls back to looking for the method name in the source text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lupa import lua54

_PROBE = r"""
local src, name = ...
local stub
stub = setmetatable({}, {
  __index = function() return stub end, __call = function() return stub end,
  __concat = function() return "" end, __add = function() return 0 end,
})
local env = setmetatable({}, { __index = function(_, k)
  if k == "require" then return function() return stub end end
  local v = _G[k]
  if k == "pairs" or k == "ipairs" or k == "setmetatable" or k == "type" or k == "table"
    or k == "string" or k == "math" or k == "select" or k == "tostring" or k == "tonumber" then
    return v
  end
  return stub
end })
local chunk, err = load("local _ENV = ...; " .. src, name, "t", {})
if not chunk then return false, err end
local co = coroutine.create(function() return chunk(env) end)
debug.sethook(co, function() error("budget") end, "", 200000)
local ok, mod = coroutine.resume(co)
if not ok or type(mod) ~= "table" then return true, nil end
local names = {}
for k, v in pairs(mod) do
  if type(k) == "string" and type(v) == "function" then names[#names + 1] = k end
end
table.sort(names)
return true, names
"""

_LINE = re.compile(r":(\d+):")


@dataclass
class LuaCheck:
    syntax_error: str | None = None
    line: int | None = None
    exported: list[str] | None = None  # function names the source returns, when knowable


class LuaChecker:
    def __init__(self) -> None:
        self._lua = lua54.LuaRuntime(encoding=None, register_eval=False, register_builtins=False)
        self._probe = self._lua.execute(f"return function(...) {_PROBE} end")

    def check(self, source: str, chunkname: str) -> LuaCheck:
        if source.startswith("#!"):
            source = "--" + source
        ok, result = self._probe(source.encode("utf-8"), f"@{chunkname}".encode())
        if not ok:
            message = result.decode("utf-8", "replace")
            m = _LINE.search(message)
            return LuaCheck(syntax_error=message, line=int(m.group(1)) if m else None)
        if result is None:
            return LuaCheck()
        return LuaCheck(exported=[n.decode() for n in result.values()])


def method_defined_in_text(source: str, method: str) -> bool:
    return re.search(rf"\b{re.escape(method)}\b", source) is not None
