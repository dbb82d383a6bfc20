//! `yihao keys ...`: key management. Signing keys join here with the sign-in capability.

use clap::Subcommand;

use super::Admin;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Re-seal ID numbers, phone numbers and legacy user ids under the active PII key version
    /// (`keys.pii_version`), in batches, beside live traffic. Safe to interrupt and run again.
    RotatePii {
        /// Rows per batch and table.
        #[arg(long, default_value_t = 500)]
        batch: i64,
    },
}

pub(super) async fn run(admin: &Admin, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::RotatePii { batch } => {
            let version = admin.identities.pii.active_version();
            let mut total = 0u64;
            loop {
                let done = admin
                    .identities
                    .reseal_batch(batch.clamp(1, 100_000))
                    .await?;
                total += done;
                if done == 0 {
                    break;
                }
                eprintln!("re-sealed {total} values so far");
            }
            println!("{{\"pii_version\":{version},\"resealed\":{total}}}");
            Ok(())
        }
    }
}
