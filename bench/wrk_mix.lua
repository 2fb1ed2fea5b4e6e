-- wrk: the agent list read by many, while one request in $WRITE_EVERY
-- changes an agent (PATCH its description), which drops the server's cached
-- list. Agent ids one per line in $AGENTS_FILE; the token in $TOKEN.
local agents = {}
local every = tonumber(os.getenv("WRITE_EVERY") or "10")
local n = 0
local auth = "Bearer " .. os.getenv("TOKEN")

function init(args)
  for line in io.lines(os.getenv("AGENTS_FILE")) do
    agents[#agents + 1] = line
  end
end

function request()
  n = n + 1
  if n % every == 0 then
    local id = agents[math.floor(n / every) % #agents + 1]
    return wrk.format("PATCH", "/api/v1/agents/" .. id,
                      {["Authorization"] = auth, ["Content-Type"] = "application/json"},
                      '{"description": "change ' .. n .. '"}')
  end
  return wrk.format("GET", "/api/v1/agents", {["Authorization"] = auth})
end
