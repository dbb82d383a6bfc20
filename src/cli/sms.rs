//! `yihao sms outbox`: the messages the development SMS gateway "sent" (development mode with
//! `sms.adapter = "dev"` only: the outbox holds codes in clear, so nothing else reads it).

use clap::Subcommand;

use super::Output;
use crate::config::{Adapter, Config, Mode};
use crate::outside::sms::read_outbox;

#[derive(Debug, Subcommand)]
pub enum SmsCommand {
    /// Print the development outbox, newest last (development mode, dev adapter only).
    Outbox {
        /// Only messages to this mobile number.
        #[arg(long)]
        phone: Option<String>,
        /// Only the last N messages.
        #[arg(long, value_name = "N")]
        last: Option<usize>,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
}

pub fn run(config: &Config, command: SmsCommand) -> anyhow::Result<()> {
    let SmsCommand::Outbox {
        phone,
        last,
        output,
    } = command;
    if config.mode != Mode::Development || config.sms.adapter != Adapter::Dev {
        anyhow::bail!("the SMS outbox exists only in development mode with sms.adapter = \"dev\"");
    }
    let wanted = match phone.as_deref() {
        Some(raw) => Some(
            crate::domain::identifiers::Phone::parse(raw)
                .map_err(|e| anyhow::anyhow!("--phone: {e}"))?
                .as_str()
                .to_owned(),
        ),
        None => None,
    };
    let mut messages: Vec<_> = read_outbox(&config.sms.dev_outbox)
        .map_err(|e| anyhow::anyhow!("{}: {e}", config.sms.dev_outbox.display()))?
        .into_iter()
        .filter(|m| wanted.as_deref().is_none_or(|p| m.phone == p))
        .collect();
    if let Some(n) = last {
        let skip = messages.len().saturating_sub(n);
        messages.drain(..skip);
    }
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&messages)?),
        Output::Text => {
            for m in &messages {
                println!("{}\t{}\t{}\t{}", m.at, m.phone, m.purpose, m.code);
            }
        }
    }
    Ok(())
}
