-- wrk: POST /api/v1/orders as one of 100 users, for one unit of one of 100 products
-- (scripts/http_load.sh sets them up).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local body = string.format('{"items": [{"product": %d, "quantity": 1}]}', math.random(1, 100))
  return wrk.format(nil, nil, { ["X-User-Id"] = tostring(math.random(1, 100)) }, body)
end
