-- workflow: information about and control of the running workflow. On a durable host
-- these commands are recorded and replayed; elsewhere they have in-memory answers.
local rt = ...
local call, raise, copy, copy_args = rt.call, rt.raise, rt.copy, rt.copy_args
local type, math_type = type, math.type

local M = {}

function M.info() return call("workflow.info") end

function M.version(change_id, min_supported, max_supported)
  if type(change_id) ~= "string" or change_id == "" then
    raise("Invalid", "workflow.version: change_id must be a non-empty string")
  end
  if math_type(min_supported) ~= "integer" or math_type(max_supported) ~= "integer" or min_supported > max_supported then
    raise("Invalid", "workflow.version: min_supported and max_supported must be integers with min <= max")
  end
  return call("workflow.version", change_id, min_supported, max_supported)
end

function M.attrs(values)
  if type(values) ~= "table" then raise("Invalid", "workflow.attrs expects {search = {...}, memo = {...}}") end
  local search, memo = values.search, values.memo
  if search ~= nil and type(search) ~= "table" then raise("Invalid", "workflow.attrs: search must be a table") end
  if memo ~= nil and type(memo) ~= "table" then raise("Invalid", "workflow.attrs: memo must be a table") end
  return call("workflow.attrs", search and copy(search, "search"), memo and copy(memo, "memo"))
end

function M.history_length() return call("workflow.history_length") end
function M.history_size() return call("workflow.history_size") end

-- Run a child workflow on this workflow's host and wait for its result.
function M.exec(id, ...)
  if type(id) ~= "string" or id == "" then return nil, rt.new_error("Invalid", "workflow.exec: id must be an entry ID", false) end
  local ok, args = pcall(copy_args, ...)
  if not ok then return nil, args end
  return call("process.exec", id, call("workflow.host_id"), nil, nil, nil, nil, args)
end

return M
