//! `yihao admin ...`: administrator roles (docs/administration.md). The operator bootstraps the
//! first administrators here; there are no default accounts or passwords. Each grant also makes the
//! account sign in with two factors.

use clap::Subcommand;

use super::{Admin, Output, now};
use crate::protocol::audit::RequestContext;

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Give an account an administrator role (one role per account).
    Grant {
        /// The account: its id, ID number or mobile number.
        #[arg(long)]
        account: String,
        /// system, security, audit or department.
        #[arg(long)]
        role: String,
        /// A department administrator's department (unified social credit code).
        #[arg(long)]
        department: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Take an account's administrator role away (its sessions end).
    Revoke {
        /// The account: its id, ID number or mobile number.
        #[arg(long)]
        account: String,
        /// The role it holds (checked, so a typo revokes nothing).
        #[arg(long)]
        role: String,
    },
    /// List the administrators.
    List {
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
}

pub(super) async fn run(admin: &Admin, command: AdminCommand) -> anyhow::Result<()> {
    let context = RequestContext::default();
    let ops = admin.administration(&context);
    let now = now();
    match command {
        AdminCommand::Grant {
            account,
            role,
            department,
            output,
        } => {
            let account = super::account::resolve(admin, &account, now).await?;
            let granted = ops
                .grant_role(account.id.as_str(), &role, department.as_deref(), now)
                .await?;
            let value = serde_json::to_value(&granted)?;
            match output {
                Output::Json => println!("{value}"),
                Output::Text => super::print_text(&value),
            }
            eprintln!(
                "account {} is a {} administrator; it must sign in with two factors",
                granted.account_id, granted.role
            );
        }
        AdminCommand::Revoke { account, role } => {
            let account = super::account::resolve(admin, &account, now).await?;
            let held = admin.store.role_of(account.id.as_str()).await?;
            match held {
                Some(h) if h.role == role => {}
                Some(h) => anyhow::bail!(
                    "account {} is a {} administrator, not {role}",
                    account.id,
                    h.role
                ),
                None => anyhow::bail!("account {} holds no administrator role", account.id),
            }
            ops.revoke_role(account.id.as_str(), now).await?;
            eprintln!("account {} is no longer a {role} administrator", account.id);
        }
        AdminCommand::List { output } => {
            let roles = ops.list_roles().await?;
            match output {
                Output::Json => println!("{}", serde_json::to_string(&roles)?),
                Output::Text => {
                    for r in &roles {
                        println!(
                            "{}\t{}\t{}",
                            r.account_id,
                            r.role,
                            r.department.as_deref().unwrap_or("")
                        );
                    }
                }
            }
        }
    }
    Ok(())
}
