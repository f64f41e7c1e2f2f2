//! criterion benches for certauth; see `benches/` and BENCHMARKS.md. The library holds what
//! the harness binaries (`src/bin/load.rs`, `src/bin/requests.rs`) share: reading a server
//! process's CPU time and memory, and summarising samples.
#![allow(clippy::unwrap_used, clippy::as_conversions, missing_docs)]

/// The server's (pid's) CPU time in seconds, all threads: the sum of each thread's run time
/// from `/proc/PID/task/*/schedstat` (nanoseconds), or utime + stime from `/proc/PID/stat`
/// (10 ms ticks) where schedstat is missing.
pub fn cpu_seconds(pid: u32) -> f64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"));
    let from_schedstat = tasks.ok().and_then(|dir| {
        let mut ns = 0u64;
        for task in dir.flatten() {
            let line = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            ns += line.split_whitespace().next()?.parse::<u64>().ok()?;
        }
        Some(ns as f64 / 1e9)
    });
    from_schedstat.unwrap_or_else(|| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let after_comm = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<u64> = after_comm
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        // utime and stime are fields 14 and 15 of the full line; after the command, with the
        // non-numeric state dropped, they are at 10 and 11.
        let ticks = f.get(10).copied().unwrap_or(0) + f.get(11).copied().unwrap_or(0);
        ticks as f64 / 100.0
    })
}

/// Context switches of all the server's threads (voluntary + involuntary).
pub fn switches(pid: u32) -> u64 {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    dir.flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .flat_map(|s| {
            s.lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

pub fn rss_kib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0)
}

pub fn median(v: Vec<f64>) -> f64 {
    quartiles(v).1
}

/// The first quartile, the median and the third quartile (linear interpolation).
pub fn quartiles(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| -> f64 {
        if v.is_empty() {
            return f64::NAN;
        }
        let pos = q * (v.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
    };
    (at(0.25), at(0.5), at(0.75))
}
