-- wrk script: POST a realistic Telegram Update with the secret header, a unique update_id per
-- request (the sidecar deduplicates update_ids), and print a JSON summary at the end.
-- Environment: WRK_SECRET (the secret token), WRK_FIRST_ID (first update_id).
local counter = 0
local threads = {}
local thread_no = 0

function setup(thread)
  thread:set("thread_no", thread_no)
  thread_no = thread_no + 1
  table.insert(threads, thread)
end

function init(args)
  counter = tonumber(os.getenv("WRK_FIRST_ID") or "1") + thread_no * 100000000
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-Telegram-Bot-Api-Secret-Token"] = os.getenv("WRK_SECRET") or ""
end

local body_head = '{"update_id":'
local body_tail = ',"message":{"message_id":%d,"from":{"id":%d,"is_bot":false,"first_name":"Ada",'
  .. '"last_name":"Lovelace","username":"ada_%d","language_code":"en"},"chat":{"id":%d,'
  .. '"first_name":"Ada","last_name":"Lovelace","username":"ada_%d","type":"private"},'
  .. '"date":%d,"text":"Hello there!"}}'

function request()
  counter = counter + 1
  local chat = counter % 1000
  local user = 100000000 + chat
  local body = body_head .. counter .. string.format(body_tail, 1000 + counter % 100000, user, chat, user, chat,
    1760000000 + counter % 1000000)
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  local s = summary
  io.write(string.format(
    'WRK_JSON {"requests":%d,"seconds":%.6f,"rps":%.3f,"errors":{"connect":%d,"read":%d,"write":%d,'
      .. '"status":%d,"timeout":%d},"latency_ms":{"p50":%.4f,"p90":%.4f,"p99":%.4f,"max":%.4f}}\n',
    s.requests, s.duration / 1e6, s.requests / (s.duration / 1e6), s.errors.connect, s.errors.read,
    s.errors.write, s.errors.status, s.errors.timeout, latency:percentile(50) / 1000,
    latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
