-- wrk: POST the first line of the bodies file on every request.
-- wrk -s same_body.lua URL -- BODIES_FILE
function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = io.lines(args[1])()
end
