-- wrk: POST one line of the bodies file per request, each line at most once while it lasts.
-- wrk -s unique_bodies.lua URL -- BODIES_FILE THREADS OFFSET (lines an earlier run already sent)
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  bodies = {}
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
  step = tonumber(args[2])
  nxt = id + 1 + tonumber(args[3] or "0")
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local body = bodies[((nxt - 1) % #bodies) + 1]
  nxt = nxt + step
  return wrk.format(nil, nil, nil, body)
end
