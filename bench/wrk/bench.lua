-- wrk script of bench/run.sh, driven by environment variables:
--   BENCH_METHOD   GET (default) or POST
--   BENCH_BODY     request body (form-encoded; sets Content-Type)
--   BENCH_AUTH     Authorization header value
--   BENCH_TOKENS   file of tokens, one a line, walked in order:
--   BENCH_MODE     bearer: each request sends the next as its bearer token
--                  refresh: each request is a refresh_token grant with the next
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

if tokens_file and tokens_file ~= "" then
  request = function()
    i = i + 1
    if i > #tokens then i, wrapped = 1, true end
    pos = wrapped and #tokens + 1 or i -- run.sh refuses a refresh row that wrapped
    local t = tokens[i]
    if mode == "refresh" then
      return wrk.format("POST", nil, nil, "grant_type=refresh_token&refresh_token=" .. t)
    end
    return wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. t })
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
