//! `yihao account import`: streams a JSON-lines file through `Identities::import_line`, a chunk
//! at a time with several lines in flight, and prints a summary. Memory stays bounded by the chunk,
//! whatever the file's size.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::{Admin, Output, now};
use crate::protocol::import::Outcome;

/// Details kept per category; counts are always complete.
const MAX_DETAILS: usize = 10_000;

#[derive(Default)]
struct Summary {
    lines: u64,
    created: u64,
    merged: u64,
    unchanged: u64,
    conflicts: u64,
    rejected: u64,
    conflict_details: Vec<(u64, String)>,
    rejected_details: Vec<(u64, String)>,
}

impl Summary {
    fn add(&mut self, line: u64, outcome: Outcome) {
        self.lines += 1;
        match outcome {
            Outcome::Created => self.created += 1,
            Outcome::Merged => self.merged += 1,
            Outcome::Unchanged => self.unchanged += 1,
            Outcome::Conflict(why) => {
                self.conflicts += 1;
                if self.conflict_details.len() < MAX_DETAILS {
                    self.conflict_details.push((line, why));
                }
            }
            Outcome::Rejected(why) => {
                self.rejected += 1;
                if self.rejected_details.len() < MAX_DETAILS {
                    self.rejected_details.push((line, why));
                }
            }
        }
    }
}

pub(super) async fn run(
    admin: &Admin,
    file: &Path,
    batch: usize,
    output: Output,
) -> anyhow::Result<()> {
    let reader: Box<dyn AsyncRead + Unpin + Send> = if file.as_os_str() == "-" {
        Box::new(tokio::io::stdin())
    } else {
        Box::new(
            tokio::fs::File::open(file)
                .await
                .with_context(|| format!("cannot open {}", file.display()))?,
        )
    };
    let mut lines = BufReader::with_capacity(1 << 16, reader).lines();
    let batch = batch.clamp(1, 100_000);
    let jobs = 8;
    let progress = std::io::stderr().is_terminal();
    let started = Instant::now();
    let now = now();
    let mut summary = Summary::default();
    let mut number = 0u64;
    loop {
        let mut chunk: Vec<(u64, String)> = Vec::with_capacity(batch);
        while chunk.len() < batch {
            match lines
                .next_line()
                .await
                .context("cannot read the import file")?
            {
                Some(line) => {
                    number += 1;
                    if !line.trim().is_empty() {
                        chunk.push((number, line));
                    }
                }
                None => break,
            }
        }
        if chunk.is_empty() {
            break;
        }
        let ids = &admin.identities;
        let lanes = crate::protocol::import::lanes(chunk, jobs, now);
        let results = futures_util::future::join_all(lanes.into_iter().map(|lane| async move {
            let mut done = Vec::with_capacity(lane.len());
            for (n, line) in lane {
                done.push((n, ids.import_line(&line, now).await));
            }
            done
        }))
        .await;
        let mut outcomes = Vec::with_capacity(batch);
        for (n, result) in results.into_iter().flatten() {
            outcomes.push((n, result.with_context(|| format!("line {n}"))?));
        }
        outcomes.sort_by_key(|(n, _)| *n);
        for (n, outcome) in outcomes {
            summary.add(n, outcome);
        }
        if progress {
            let rate = summary.lines as f64 / started.elapsed().as_secs_f64().max(1e-3);
            eprint!("\r{} lines imported ({rate:.0} lines/s)   ", summary.lines);
        }
    }
    if progress {
        eprintln!();
    }
    let seconds = started.elapsed().as_secs_f64();
    let details = |d: &[(u64, String)]| {
        d.iter()
            .map(|(line, reason)| json!({"line": line, "reason": reason}))
            .collect::<Vec<_>>()
    };
    let report = json!({
        "lines": summary.lines,
        "created": summary.created,
        "merged": summary.merged,
        "unchanged": summary.unchanged,
        "conflicts": summary.conflicts,
        "rejected": summary.rejected,
        "seconds": (seconds * 1000.0).round() / 1000.0,
        "lines_per_second": (summary.lines as f64 / seconds.max(1e-6)).round(),
        "conflict_details": details(&summary.conflict_details),
        "rejected_details": details(&summary.rejected_details),
    });
    match output {
        Output::Json => println!("{report}"),
        Output::Text => {
            println!(
                "{} lines: {} created, {} merged, {} unchanged, {} conflicts, {} rejected ({:.1} s)",
                summary.lines,
                summary.created,
                summary.merged,
                summary.unchanged,
                summary.conflicts,
                summary.rejected,
                seconds
            );
            for (line, why) in &summary.conflict_details {
                println!("conflict  line {line}: {why}");
            }
            for (line, why) in &summary.rejected_details {
                println!("rejected  line {line}: {why}");
            }
        }
    }
    Ok(())
}
