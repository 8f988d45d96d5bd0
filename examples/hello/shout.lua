local function main(word)
  if type(word) ~= "string" then
    return nil, errors.new({ kind = errors.INVALID, message = "shout expects a string" })
  end
  return string.upper(word) .. "!"
end

return { main = main }
