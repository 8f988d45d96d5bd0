local t = {}
for i = 1, 3e6 do t[i] = (i * 7919) % 1000003 end
local t0 = os.clock()
table.sort(t)
local s = string.rep("ab", 1e8)
local t1 = os.clock()
local r = s:gsub("a", "c")
return string.format("sort %.2fs gsub %.2fs", t1 - t0, os.clock() - t1)
