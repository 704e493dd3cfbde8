-- wrk script: Alertmanager v4 bodies whose alerts all carry fresh fingerprints.
-- `wrk ... -- N TAG KEYS`: N alerts per request (default 10); TAG keeps the fingerprints of wrk
-- processes started together apart; KEYS services (incident keys) the requests cycle through
-- (default 1: every alert joins one incident).
local alerts_per_request = 10
local keys = 1
local counter = 0
local prefix = ""

function init(args)
  alerts_per_request = tonumber(args[1] or "10")
  math.randomseed(os.time())
  prefix = (args[2] or "") .. string.format("%06x", math.random(0, 0xffffff))
  keys = tonumber(args[3] or "1")
end

local alert = '{"status":"firing","labels":{"alertname":"BenchAlert","service":"bench-%d",'
  .. '"instance":"host-%s"},"annotations":{"summary":"benchmark alert"},'
  .. '"startsAt":"2026-11-21T12:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"%s"}'

function request()
  counter = counter + 1
  local parts = {}
  for i = 1, alerts_per_request do
    local id = string.format("%s%08x%04x", prefix, counter, i)
    parts[i] = string.format(alert, counter % keys, id, id)
  end
  local body = '{"version":"4","status":"firing","receiver":"bench","groupKey":"{}:{}",'
    .. '"alerts":[' .. table.concat(parts, ",") .. ']}'
  return wrk.format("POST", "/webhooks/alertmanager",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer bench"}, body)
end
