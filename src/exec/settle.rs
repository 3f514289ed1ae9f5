//! Settling: the kernel removes a deleted namespace's veths a moment after
//! `ip netns del` returns. Steps that cause such removals name the host-side
//! interfaces in `Step::settle`; the executor waits here, polling
//! `ip -j link show` through the runner, until they are gone, so the host is
//! as the plan left it when nsnet returns (a script that runs `down` then
//! `bridge up` must not find the old veths still there).

use crate::exec::runner::Runner;
use crate::plan::Step;
use crate::plan::cmd::Cmd;
use anyhow::Context;
use serde::Deserialize;
use std::time::{Duration, Instant};

/// How long nsnet waits for the kernel to remove a deleted namespace's veths.
pub const LIMIT: Duration = Duration::from_secs(10);

/// Waits until the interfaces `steps` remove asynchronously are gone, for at
/// most `LIMIT`; warns about any still there.
pub fn settle(runner: &mut dyn Runner, steps: &[Step]) {
    let links: Vec<String> = steps.iter().flat_map(|s| s.settle.clone()).collect();
    if links.is_empty() {
        return;
    }
    let left = wait_gone(runner, &links, LIMIT).unwrap_or_else(|why| {
        tracing::warn!("cannot list the host's interfaces: {why:#}");
        links.clone()
    });
    if !left.is_empty() {
        tracing::warn!(
            "{} still on the host after its namespace was deleted: a process may hold the \
             namespace open (see `lsns -t net`), or remove it with `ip link del NAME`",
            left.join(", ")
        );
    }
}

#[derive(Deserialize)]
struct Link {
    ifname: String,
}

/// Polls until none of `names` is an interface of the host, 2 ms doubling to
/// 50 ms between looks, for at most `limit`. Returns those still there.
fn wait_gone(
    runner: &mut dyn Runner,
    names: &[String],
    limit: Duration,
) -> anyhow::Result<Vec<String>> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        let text = runner.run(&Cmd::ip(["-j", "link", "show"]))?;
        let links: Vec<Link> =
            serde_json::from_str(&text).context("cannot read `ip -j link show`")?;
        let left: Vec<String> = names
            .iter()
            .filter(|n| links.iter().any(|l| &l.ifname == *n))
            .cloned()
            .collect();
        if left.is_empty() || start.elapsed() >= limit {
            return Ok(left);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
