//! `yihao org ...`: organisations and the people who act for them.

use anyhow::Context;
use clap::Subcommand;
use serde_json::{Value, json};

use super::{Admin, Output, audit_admin, now};
use crate::domain::account::AccountId;
use crate::domain::date::Date;
use crate::domain::identifiers::CreditCode;
use crate::domain::organisation::{Membership, OrgId, Organisation, Role, Scope};
use crate::protocol::admin::MAX_PAGE;
use crate::protocol::audit::{EventType, RequestContext};

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
    let ids = &admin.identities;
    let now = now();
    match command {
        OrgCommand::Create {
            credit_code,
            name,
            output,
        } => {
            let code = CreditCode::parse(&credit_code)?;
            let id = OrgId::parse(&uuid::Uuid::new_v4().to_string())?;
            let org = ids.create_org(id, code, &name, now).await?;
            audit_admin(
                admin,
                EventType::AdminOrganisation,
                org.id.as_str(),
                "create",
            )
            .await?;
            print(&org_json(&org, &[]), output);
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
            let org = resolve(admin, &org).await?;
            let account = account_id(admin, &account, now).await?;
            let granted_by = match granted_by {
                Some(g) => Some(account_id(admin, &g, now).await?),
                None => None,
            };
            let expires_at = expires.as_deref().map(parse_expiry).transpose()?;
            let membership = Membership::grant(
                org.id.clone(),
                account,
                Role::parse(&role)?,
                Scope::parse(&scope)?,
                expires_at,
                granted_by,
                now,
            )?;
            let membership = ids.grant(&org, membership, now).await?;
            let change = format!(
                "grant:{}:{}",
                membership.role.as_str(),
                membership.account_id
            );
            audit_admin(
                admin,
                EventType::AdminOrganisation,
                org.id.as_str(),
                &change,
            )
            .await?;
            print(&member_json(&membership), output);
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

async fn resolve(admin: &Admin, key: &str) -> anyhow::Result<Organisation> {
    let found = match CreditCode::parse(key) {
        Ok(code) => admin.store.org_by_code(&code).await?,
        Err(_) => admin.store.org(&OrgId::parse(key)?).await?,
    };
    found.context("no such organisation")
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

fn member_json(m: &Membership) -> Value {
    json!({
        "org_id": m.org_id.as_str(),
        "account_id": m.account_id.as_str(),
        "role": m.role.as_str(),
        "scope": m.scope.to_list(),
        "expires_at": m.expires_at,
        "granted_by": m.granted_by.as_ref().map(AccountId::as_str),
        "granted_at": m.granted_at,
    })
}

fn org_json(o: &Organisation, members: &[Membership]) -> Value {
    json!({
        "org_id": o.id.as_str(),
        "credit_code": o.credit_code.as_str(),
        "name": o.name,
        "category": o.category().as_str(),
        "status": o.status.as_str(),
        "members": members.iter().map(member_json).collect::<Vec<_>>(),
        "created_at": o.created_at,
        "updated_at": o.updated_at,
    })
}

fn print(value: &Value, output: Output) {
    match output {
        Output::Json => println!("{value}"),
        Output::Text => super::print_text(value),
    }
}
