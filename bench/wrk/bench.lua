-- wrk script of bench/run.sh, driven by environment variables:
--   BENCH_METHOD   GET (default) or POST
--   BENCH_BODY     request body (form-encoded; sets Content-Type)
--   BENCH_AUTH     Authorization header value
--   BENCH_TOKENS   file of tokens, one a line, walked in order:
--   BENCH_MODE     bearer: each request sends the next as its bearer token
--                  refresh: each request is a refresh_token grant; it presents
--                  the refresh token of an earlier response (rotation hands
--                  out a new one each time, as a client would chain them),
--                  else the next unused token of the file
--                  dpop: each request sends the next as its DPoP proof, with
--                  BENCH_AUTH (DPoP <token>) as Authorization; a file holds
--                  more proofs than a run sends (a proof sent twice is
--                  refused, and the row void)
--   BENCH_STATE    file keeping the walk's position across wrk runs, so no
--                  token is presented twice (one wrk thread)
-- done() prints one machine-readable line for run.sh:
--   RESULT <requests> <duration_us> <p50_us> <p99_us> <non2xx> <socket_errors>
local method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
local auth = os.getenv("BENCH_AUTH")
local tokens_file = os.getenv("BENCH_TOKENS")
local mode = os.getenv("BENCH_MODE") or "bearer"
local state = os.getenv("BENCH_STATE")
local tokens = {}
local i = 0
local threads = {}

wrk.method = method
if body and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
if mode == "refresh" and tokens_file then
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end

function setup(thread)
  threads[#threads + 1] = thread
end

function init(args)
  if state and state ~= "" then
    local f = io.open(state, "r")
    if f then
      i = tonumber(f:read("*l")) or 0
      f:close()
    end
  end
  if tokens_file and tokens_file ~= "" then
    for line in io.lines(tokens_file) do
      if line ~= "" then tokens[#tokens + 1] = line end
    end
  end
end

-- Fresh refresh tokens taken from responses, first in first out.
local chain, head, tail = {}, 1, 0

local function next_token()
  i = i + 1
  if i > #tokens then i, wrapped = 1, true end
  pos = wrapped and #tokens + 1 or i -- run.sh refuses a refresh row that wrapped
  return tokens[i]
end

if tokens_file and tokens_file ~= "" then
  request = function()
    if mode == "refresh" then
      local t
      if head <= tail then
        t = chain[head]
        chain[head] = nil
        head = head + 1
      else
        t = next_token()
      end
      return wrk.format("POST", nil, nil, "grant_type=refresh_token&refresh_token=" .. t)
    end
    if mode == "dpop" then
      return wrk.format(nil, nil, { ["Authorization"] = auth, ["DPoP"] = next_token() })
    end
    return wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. next_token() })
  end
end

if mode == "refresh" and tokens_file and tokens_file ~= "" then
  response = function(status, headers, body)
    if status == 200 then
      local t = body:match('"refresh_token":"([^"]+)"')
      if t then
        tail = tail + 1
        chain[tail] = t
      end
    end
  end
end

function done(summary, latency, requests)
  if state and state ~= "" then
    local n = 0
    for _, t in ipairs(threads) do n = math.max(n, t:get("pos") or 0) end
    local f = io.open(state, "w")
    f:write(n, "\n")
    f:close()
  end
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.status, e.connect + e.read + e.write + e.timeout))
end
