//! `yihao audit ...`: verify and export the tamper-evident audit log, and sign its head.

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};

use super::Admin;
use crate::crypto::signing::Alg;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain and check every signed checkpoint; names the first bad record.
    Verify {
        /// Start at this record, trusting the one before it (a quicker check of recent records).
        #[arg(long, default_value_t = 1)]
        from: i64,
    },
    /// Print records from a time on, one JSON object per line, in sequence order.
    Export {
        /// YYYY-MM-DD (00:00 China Standard Time) or epoch seconds.
        #[arg(long)]
        since: String,
        #[arg(long, value_enum, default_value_t)]
        format: ExportFormat,
    },
    /// Sign the chain's head now (nodes also do it every audit.checkpoint_secs).
    Checkpoint,
    /// Retention: export records older than audit.retention_days to FILE (JSON lines), then delete
    /// them — only up to a signed checkpoint, whose record stays as the chain's new start.
    Prune {
        /// Where the pruned records go first; must not exist yet.
        #[arg(long)]
        export: std::path::PathBuf,
    },
}

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum ExportFormat {
    #[default]
    Jsonl,
}

pub(super) async fn run(
    admin: &Admin,
    config: &crate::config::Config,
    command: AuditCommand,
) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify { from } => {
            let ring = admin.keys.ring();
            let v = crate::protocol::audit::verify(admin.store.as_ref(), &ring, from).await?;
            eprintln!(
                "audit log intact: records {}..{} chained, {} signed checkpoint(s) verified",
                v.first, v.last, v.checkpoints
            );
            Ok(())
        }
        AuditCommand::Export { since, format } => {
            let ExportFormat::Jsonl = format;
            let since_ms = match since.parse::<i64>() {
                Ok(secs) => secs.saturating_mul(1000),
                Err(_) => crate::domain::date::Date::parse_iso(&since)
                    .map_err(anyhow::Error::msg)
                    .context("--since")?
                    .cst_midnight_epoch()
                    .saturating_mul(1000),
            };
            let mut after = 0;
            loop {
                let page = admin
                    .store
                    .audit_records_since(since_ms, after, 1000)
                    .await?;
                for r in &page {
                    println!("{}", serde_json::to_string(r)?);
                }
                match page.last() {
                    Some(r) if page.len() == 1000 => after = r.seq,
                    _ => break,
                }
            }
            Ok(())
        }
        AuditCommand::Prune { export } => {
            let cut_ms = super::now_ms() - i64::from(config.audit.retention_days) * 86_400_000;
            let checkpoints = admin.store.checkpoints().await?;
            let Some(keep_from) = crate::protocol::audit::prune_point(&checkpoints, cut_ms) else {
                eprintln!("nothing to prune: no checkpoint older than the retention period");
                return Ok(());
            };
            let first = admin.store.audit_first().await?.unwrap_or(keep_from);
            if first >= keep_from {
                eprintln!("nothing to prune: records before {keep_from} are gone already");
                return Ok(());
            }
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&export)
                .with_context(|| format!("cannot create {}", export.display()))?;
            let mut out = std::io::BufWriter::new(file);
            let mut next = first;
            while next < keep_from {
                let page = admin
                    .store
                    .audit_records(next, (keep_from - next).min(1000))
                    .await?;
                let Some(last) = page.last() else { break };
                next = last.seq + 1;
                for r in &page {
                    use std::io::Write;
                    writeln!(out, "{}", serde_json::to_string(r)?)?;
                }
            }
            let file = out.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            let pruned = admin.store.prune_audit(keep_from).await?;
            let event = crate::protocol::audit::AuditEvent::success(
                crate::protocol::audit::EventType::AuditPruned,
            )
            .actor("admin")
            .details(serde_json::json!({
                "first": first,
                "kept_from": keep_from,
                "records": pruned,
                "export": export.display().to_string(),
            }));
            crate::protocol::audit::AuditSink::record(&admin.audit, event).await?;
            eprintln!(
                "exported and pruned {pruned} record(s) before {keep_from} to {}",
                export.display()
            );
            Ok(())
        }
        AuditCommand::Checkpoint => {
            let alg = Alg::parse(&config.tokens.id_token_alg).map_err(anyhow::Error::msg)?;
            let ring = admin.keys.ring();
            let signed = crate::protocol::audit::checkpoint_head(
                admin.store.as_ref(),
                &ring,
                alg,
                &config.server.issuer,
                0,
                super::now_ms(),
            )
            .await?;
            let Some(seq) = signed else {
                bail!("the audit log is empty: nothing to sign");
            };
            eprintln!("signed the audit log's head at record {seq}");
            Ok(())
        }
    }
}
