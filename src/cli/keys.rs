//! `yihao keys ...`: signing keys, the PII key version and the master key.

use clap::Subcommand;

use super::{Admin, Output, audit_admin, now};
use crate::protocol::audit::{EventType, RequestContext};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the signing keys with their state.
    List {
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Make a new signing key for an algorithm. It is published at once, signs after
    /// keys.publish_before_use_secs, and the key it replaces stops signing then.
    Rotate {
        /// RS256, ES256 or EdDSA.
        #[arg(long)]
        alg: String,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Stop a key signing now (it stays published until the tokens it signed have expired).
    Retire { kid: String },
    /// Withdraw a compromised key at once: it no longer signs, is no longer published, and no
    /// token it signed is accepted any more. Another key must sign for its algorithm now.
    Revoke { kid: String },
    /// Re-seal ID numbers, phone numbers and legacy user ids under the active PII key version
    /// (`keys.pii_version`), in batches, beside live traffic. Safe to interrupt and run again.
    RotatePii {
        /// Rows per batch and table.
        #[arg(long, default_value_t = 500)]
        batch: i64,
    },
    /// Re-wrap the key root under keys.master_key after it replaced a key now listed in
    /// keys.previous_master_keys. One row changes; nothing derived does. Then empty that list.
    RotateMaster,
}

pub(super) async fn run(
    admin: &Admin,
    config: &crate::config::Config,
    command: KeysCommand,
) -> anyhow::Result<()> {
    match command {
        KeysCommand::List { output } => {
            let context = RequestContext::default();
            let ring = admin.keys.ring();
            let keys = admin
                .administration(&context)
                .list_keys(&ring, now())
                .await?;
            match output {
                Output::Json => println!("{}", serde_json::to_string(&keys)?),
                Output::Text => {
                    for k in &keys {
                        println!("{}\t{}\t{}", k.kid, k.alg, k.state);
                    }
                }
            }
            Ok(())
        }
        KeysCommand::Rotate { alg, output } => {
            let context = RequestContext::default();
            let key = admin
                .administration(&context)
                .rotate_key(&alg, now())
                .await?;
            let value = serde_json::to_value(&key)?;
            match output {
                Output::Json => println!("{value}"),
                Output::Text => super::print_text(&value),
            }
            Ok(())
        }
        KeysCommand::Retire { kid } => {
            let context = RequestContext::default();
            admin
                .administration(&context)
                .end_key(&kid, false, now())
                .await?;
            eprintln!(
                "retired {kid}: it no longer signs and stays published until its tokens expire"
            );
            Ok(())
        }
        KeysCommand::Revoke { kid } => {
            let context = RequestContext::default();
            admin
                .administration(&context)
                .end_key(&kid, true, now())
                .await?;
            eprintln!(
                "revoked {kid}: it no longer signs, is no longer published and verifies nothing"
            );
            Ok(())
        }
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
            let change = format!("rotate_pii:v{version}:{total}");
            audit_admin(admin, EventType::AdminKeys, "pii", &change).await?;
            println!("{{\"pii_version\":{version},\"resealed\":{total}}}");
            Ok(())
        }
        KeysCommand::RotateMaster => {
            use crate::crypto::MasterKey;
            use crate::protocol::key_root::{self, Opener};
            let current = MasterKey::load(&config.keys)?;
            let previous = MasterKey::load_previous(&config.keys)?;
            let opener = key_root::rewrap(admin.store.as_ref(), &current, &previous, now()).await?;
            match opener {
                Opener::Previous(i) => {
                    audit_admin(admin, EventType::AdminKeys, "master", "rotate_master").await?;
                    eprintln!(
                        "re-wrapped the key root under keys.master_key (it was under \
                         keys.previous_master_keys[{i}]); remove the previous key from the configuration"
                    );
                }
                Opener::Current | Opener::Created => {
                    eprintln!(
                        "the key root is already wrapped under keys.master_key: nothing to do"
                    )
                }
            }
            Ok(())
        }
    }
}
