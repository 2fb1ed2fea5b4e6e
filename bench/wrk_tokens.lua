-- wrk: GET the path given to wrk, each request with the next of many bearer
-- tokens (one per line in $TOKENS_FILE), so that no single token's memo
-- or account state serves them all.
local tokens = {}
local next_token = 0

function init(args)
  for line in io.lines(os.getenv("TOKENS_FILE")) do
    tokens[#tokens + 1] = line
  end
  -- Each thread starts at its own place (the threads' tables differ).
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16))
  next_token = math.random(#tokens)
end

function request()
  next_token = next_token % #tokens + 1
  return wrk.format("GET", nil, {["Authorization"] = "Bearer " .. tokens[next_token]})
end
