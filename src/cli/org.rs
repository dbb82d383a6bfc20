//! `yihao org ...`: organisations and the people who act for them.

use anyhow::Context;
use clap::Subcommand;
use serde_json::Value;

use super::{Admin, Output, now};
use crate::domain::account::AccountId;
use crate::domain::date::Date;
use crate::protocol::admin::MAX_PAGE;
use crate::protocol::admin::orgs::{NewMember, NewOrg};
use crate::protocol::audit::RequestContext;

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Register an organisation by its unified social credit code.
    Create {
        #[arg(long)]
        credit_code: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Show an organisation (by id or credit code) with its members.
    Show {
        org: String,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// List organisations.
    List {
        #[arg(long)]
        after: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Give a person a role: legal_representative, administrator or agent.
    AddMember {
        /// Organisation id or credit code.
        org: String,
        /// The person's account id, ID number or phone number.
        #[arg(long)]
        account: String,
        #[arg(long)]
        role: String,
        /// Service-item codes an agent may act on (repeat); all business when omitted.
        #[arg(long = "scope", value_name = "ITEM")]
        scope: Vec<String>,
        /// When the mandate ends: YYYY-MM-DD (00:00 China time) or epoch seconds. Required for agents.
        #[arg(long)]
        expires: Option<String>,
        /// The account that grants it (the legal representative for administrators; the legal
        /// representative or an administrator for agents). Omitted: registered by the operator.
        #[arg(long)]
        granted_by: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Take a role away: the person's refresh tokens acting in it are revoked and their sessions
    /// end (services are told by back-channel logout).
    RevokeMember {
        org: String,
        #[arg(long)]
        account: String,
        #[arg(long)]
        role: String,
    },
    /// Suspend an organisation (deregistered, or its licence withdrawn): nobody acts for it any
    /// more; its members' refresh tokens acting for it are revoked and their sessions end.
    Suspend { org: String },
}

pub(super) async fn run(admin: &Admin, command: OrgCommand) -> anyhow::Result<()> {
    let _ids = &admin.identities;
    let now = now();
    match command {
        OrgCommand::Create {
            credit_code,
            name,
            output,
        } => {
            let context = RequestContext::default();
            let new = NewOrg { credit_code, name };
            let org = admin.administration(&context).create_org(&new, now).await?;
            print(&serde_json::to_value(&org)?, output);
            Ok(())
        }
        OrgCommand::Show { org, output } => {
            let context = RequestContext::default();
            let shown = admin.administration(&context).show_org(&org).await?;
            print(&serde_json::to_value(&shown)?, output);
            Ok(())
        }
        OrgCommand::List {
            after,
            limit,
            output,
        } => {
            let context = RequestContext::default();
            let ops = admin.administration(&context);
            let mut orgs = Vec::new();
            let mut after = after;
            let wanted = usize::try_from(limit.clamp(1, 10_000)).unwrap_or(10_000);
            while orgs.len() < wanted {
                let page = ops
                    .list_orgs(after.as_deref(), (wanted - orgs.len()).min(MAX_PAGE))
                    .await?;
                orgs.extend(page.items);
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            match output {
                Output::Json => println!("{}", serde_json::to_string(&orgs)?),
                Output::Text => {
                    for o in &orgs {
                        println!(
                            "{}\t{}\t{}\t{}",
                            o.org_id, o.credit_code, o.category, o.name
                        );
                    }
                }
            }
            Ok(())
        }
        OrgCommand::AddMember {
            org,
            account,
            role,
            scope,
            expires,
            granted_by,
            output,
        } => {
            let account = account_id(admin, &account, now).await?;
            let granted_by = match granted_by {
                Some(g) => Some(account_id(admin, &g, now).await?.as_str().to_owned()),
                None => None,
            };
            let new = NewMember {
                account_id: account.as_str().to_owned(),
                role,
                scope: Some(scope),
                expires_at: expires.as_deref().map(parse_expiry).transpose()?,
                expires_on: None,
                granted_by,
            };
            let context = RequestContext::default();
            let shown = admin
                .administration(&context)
                .add_member(&org, &new, now)
                .await?;
            let member = shown
                .members
                .iter()
                .find(|m| m.account_id == new.account_id && m.role == new.role)
                .context("the role was not recorded")?;
            let mut value = serde_json::to_value(member)?;
            value["org_id"] = serde_json::Value::from(shown.org_id.clone());
            print(&value, output);
            Ok(())
        }
        OrgCommand::RevokeMember { org, account, role } => {
            let account = account_id(admin, &account, now).await?;
            let context = RequestContext::default();
            let done = admin
                .administration(&context)
                .revoke_member(&org, account.as_str(), &role, now)
                .await?;
            eprintln!(
                "revoked {role} of account {account} in {org}: {} refresh token famil(ies) revoked, {} session(s) ended",
                done.refresh_families, done.sessions
            );
            Ok(())
        }
        OrgCommand::Suspend { org } => {
            let context = RequestContext::default();
            let done = admin
                .administration(&context)
                .suspend_org(&org, now)
                .await?;
            eprintln!(
                "suspended {org}: {} refresh token famil(ies) revoked, {} session(s) ended",
                done.refresh_families, done.sessions
            );
            Ok(())
        }
    }
}

fn parse_expiry(raw: &str) -> anyhow::Result<i64> {
    if let Ok(secs) = raw.parse::<i64>() {
        return Ok(secs);
    }
    Ok(Date::parse_iso(raw)
        .map_err(anyhow::Error::msg)?
        .cst_midnight_epoch())
}

async fn account_id(admin: &Admin, key: &str, now: i64) -> anyhow::Result<AccountId> {
    if let (Ok(id), 36) = (AccountId::parse(key), key.len()) {
        return Ok(id);
    }
    Ok(admin
        .identities
        .find(key, now)
        .await?
        .context("no such account")?
        .id)
}

fn print(value: &Value, output: Output) {
    match output {
        Output::Json => println!("{value}"),
        Output::Text => super::print_text(value),
    }
}
