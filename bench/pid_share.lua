-- Counts responses per worker (X-Pid header) across wrk's threads, so the bench can
-- report how evenly a shared listening socket spreads connections.
local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    pids = {}
    non2xx = 0
end

function response(status, headers, body)
    local pid = headers["X-Pid"] or "?"
    pids[pid] = (pids[pid] or 0) + 1
    if status < 200 or status > 299 then
        non2xx = non2xx + 1
    end
end

function done(summary, latency, requests)
    local total = {}
    local bad = 0
    for _, t in ipairs(threads) do
        local p = t:get("pids")
        for pid, n in pairs(p) do
            total[pid] = (total[pid] or 0) + n
        end
        bad = bad + t:get("non2xx")
    end
    for pid, n in pairs(total) do
        io.write(string.format("PID %s %d\n", pid, n))
    end
    io.write(string.format("NON2XX %d\n", bad))
    io.write(string.format("ERRORS %d %d %d %d\n", summary.errors.connect, summary.errors.read,
                           summary.errors.write, summary.errors.timeout))
end
