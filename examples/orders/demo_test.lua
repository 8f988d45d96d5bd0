-- Runs the demo as a process and checks every order ended the way the story says.
local function main()
  local results, err = process.exec("app:demo", "app:processes")
  assert(not err, tostring(err))
  assert(results["A-1"].status == "completed" and results["A-1"].tracking == "TRK-A-1")
  assert(results["A-2"].status == "completed")
  assert(results["A-3"].status == "failed" and results["A-3"].step == "payment")
  assert(results["A-4"].status == "shipping_failed" and results["A-4"].compensated == 2)
  assert(results["A-5"].status == "rejected")
  return true
end

return { main = main }
