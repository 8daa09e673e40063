//! What the operating system says about the generator and the gateway:
//! the open-file limit, CPU time used, and resident memory.
//!
//! CPU time matters because a saturated generator looks exactly like a slow
//! server: the report carries the generator's own CPU use and flags it when
//! it used more than [`SATURATED`] of the cores it ran on.

use std::time::Duration;

use nix::sys::resource::{Resource, UsageWho, getrlimit, getrusage, setrlimit};
use serde::{Deserialize, Serialize};

/// Share of the available cores above which the generator counts as
/// saturated (its numbers then say more about itself than the server).
pub const SATURATED: f64 = 0.9;

/// Cores' worth of CPU used by *other* processes during a measured phase
/// above which the report warns that the machine was busy.
pub const BUSY_MACHINE: f64 = 0.2;

/// The open-file limit in force after [`raise_nofile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileLimit {
    /// Soft limit before raising.
    pub soft_before: u64,
    /// Soft limit now (what `socket()` is checked against).
    pub soft: u64,
    /// Hard limit (the ceiling an unprivileged process may raise to).
    pub hard: u64,
}

impl FileLimit {
    /// Roughly how many sockets the generator can hold: the soft limit
    /// minus a few descriptors for stdio, the runtime and files.
    pub fn socket_budget(&self) -> u64 {
        self.soft.saturating_sub(32)
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns both.
pub fn raise_nofile() -> std::io::Result<FileLimit> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(std::io::Error::from)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(std::io::Error::from)?;
    }
    let (now, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(std::io::Error::from)?;
    Ok(FileLimit {
        soft_before: soft,
        soft: now,
        hard,
    })
}

/// User and system CPU time of this process (all threads) so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTime {
    /// Time in user mode.
    pub user: Duration,
    /// Time in the kernel (system calls: socket reads and writes).
    pub system: Duration,
}

impl CpuTime {
    /// This process's CPU time now (`getrusage(RUSAGE_SELF)`).
    pub fn now() -> CpuTime {
        let Ok(usage) = getrusage(UsageWho::RUSAGE_SELF) else {
            return CpuTime::default();
        };
        let d = |tv: nix::sys::time::TimeVal| {
            Duration::from_secs(tv.tv_sec().max(0) as u64)
                + Duration::from_micros(tv.tv_usec().max(0) as u64)
        };
        CpuTime {
            user: d(usage.user_time()),
            system: d(usage.system_time()),
        }
    }

    /// CPU time of another process, from `/proc/<pid>/stat` (utime and
    /// stime, in clock ticks).
    pub fn of_pid(pid: u32) -> Option<CpuTime> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name may hold spaces; fields restart after its ')'.
        let rest = stat.get(stat.rfind(')')? + 2..)?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // After the name: state is field 3 of stat(5), so utime (14) and
        // stime (15) are at 11 and 12 here.
        let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
        let hz = clock_ticks_per_second();
        let d = |t: u64| Duration::from_secs_f64(t as f64 / hz);
        Some(CpuTime {
            user: d(ticks(11)?),
            system: d(ticks(12)?),
        })
    }

    /// Both together.
    pub fn total(&self) -> Duration {
        self.user + self.system
    }

    /// Time used since `earlier`.
    pub fn since(&self, earlier: &CpuTime) -> CpuTime {
        CpuTime {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

fn clock_ticks_per_second() -> f64 {
    use nix::unistd::{SysconfVar, sysconf};
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(hz)) if hz > 0 => hz as f64,
        _ => 100.0,
    }
}

/// CPU time all processes on the machine spent running (user, nice and
/// system time of every core) since boot, from the first line of
/// `/proc/stat`. Interrupt and softirq time are left out: loopback network
/// processing lands there, caused by the generator and gateway themselves
/// but charged to neither.
pub fn machine_busy() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let busy: u64 = line
        .split_whitespace()
        .take(3)
        .map(|t| t.parse::<u64>().unwrap_or(0))
        .sum();
    Some(Duration::from_secs_f64(
        busy as f64 / clock_ticks_per_second(),
    ))
}

/// Resident set size of a process in bytes, from `VmRSS` in
/// `/proc/<pid>/status`.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    status_kib(&format!("/proc/{pid}/status"), "VmRSS:").map(|k| k * 1024)
}

/// This process's resident set size in bytes.
pub fn own_rss_bytes() -> Option<u64> {
    status_kib("/proc/self/status", "VmRSS:").map(|k| k * 1024)
}

/// This process's peak resident set size in bytes (`VmHWM`).
pub fn own_peak_rss_bytes() -> Option<u64> {
    status_kib("/proc/self/status", "VmHWM:").map(|k| k * 1024)
}

fn status_kib(path: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(path).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// How many cores this process may run on (its CPU affinity, e.g. one
/// under `taskset -c 1`).
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        assert!(own_rss_bytes().unwrap() > 0);
        assert!(rss_bytes(std::process::id()).unwrap() > 0);
        let mut x = 0u64;
        for i in 0..3_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        let cpu = CpuTime::of_pid(std::process::id()).unwrap();
        assert!(CpuTime::now().total() >= cpu.total() / 2);
        assert!(CpuTime::of_pid(u32::MAX).is_none());
        assert!(machine_busy().unwrap() > Duration::ZERO);
    }

    #[test]
    fn nofile_is_raised_to_hard() {
        let limit = raise_nofile().unwrap();
        assert_eq!(limit.soft, limit.hard);
        assert!(limit.soft >= limit.soft_before);
    }
}
