//! `yihao sandbox seed`: a department integrates on a laptop before asking for a production
//! registration (docs/integration/sandbox.md). Fills a development server's database with test
//! people (clearly fake names starting 测试, resident ID numbers valid by their checksum, dated
//! 1 January 1900 so that no living person is likely to hold one; mobile numbers 1990000xxxx), an enterprise with a legal
//! representative and an agent, and three clients (a web system, a single-page or native app, a
//! service calling APIs with its own token), and prints what a developer needs to sign in.
//! Refused in production mode. Running it again adds nothing and prints the same people and clients
//! (new secrets for the existing confidential clients, since secrets are kept only as hashes).

use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::{Value, json};

use super::{Admin, Output, now};
use crate::config::{Config, Mode};
use crate::domain::account::{AccountId, Email, Evidence, Level, PersonName, ProofMethod};
use crate::domain::document::Document;
use crate::domain::identifiers::{CreditCode, Phone, mod11_2_check};
use crate::domain::password::Password;
use crate::protocol::accounts::NewAccount;
use crate::protocol::admin::AdminError;
use crate::protocol::admin::clients::ClientChange;
use crate::protocol::admin::orgs::{NewMember, NewOrg};
use crate::protocol::audit::RequestContext;

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Create the test people, enterprise and clients (development mode only); print them.
    Seed {
        /// How many test people (1 to 100).
        #[arg(long, default_value_t = 5)]
        people: u32,
        /// Where the clients' redirect URIs point (a developer's machine).
        #[arg(long, default_value = "http://localhost:3000")]
        base_url: String,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
}

/// Every test person's password (printed; it satisfies the level-3 password policy).
pub const PASSWORD: &str = "Sandbox-2026!";
/// The sandbox enterprise's first 16 characters (an enterprise, 91, in Beijing's Dongcheng district,
/// 110101); `CreditCode::complete` adds the two check characters.
const ENTERPRISE: &str = "9111010100000001";

/// Test person `i`: a resident ID number of Beijing's Dongcheng district (110101), born
/// 1900-01-01, sequence number `i`, with its GB 11643 check character.
pub fn person_number(i: u32) -> String {
    let first17 = format!("11010119000101{:03}", i % 1000);
    let check = mod11_2_check(first17.as_bytes()) as char;
    format!("{first17}{check}")
}

/// The sandbox is for development mode only.
pub(super) fn refuse_production(config: &Config) -> anyhow::Result<()> {
    if config.mode == Mode::Production {
        bail!("the sandbox is for development mode only (mode = \"production\")");
    }
    Ok(())
}

pub(super) async fn run(
    admin: &Admin,
    config: &Config,
    command: SandboxCommand,
) -> anyhow::Result<()> {
    let SandboxCommand::Seed {
        people,
        base_url,
        output,
    } = command;
    refuse_production(config)?;
    if !(1..=100).contains(&people) {
        bail!("--people must be 1 to 100");
    }
    let base = base_url.trim_end_matches('/');
    url::Url::parse(base).context("--base-url")?;
    let now = now();
    let mut persons = Vec::new();
    for i in 1..=people {
        persons.push(person(admin, i, now).await?);
    }
    let enterprise = enterprise(admin, &persons, now).await?;
    let clients = clients(admin, base, now).await?;
    let value = json!({
        "password": PASSWORD,
        "people": persons,
        "enterprise": enterprise,
        "clients": clients,
        "issuer": config.server.issuer,
    });
    match output {
        Output::Json => println!("{value}"),
        Output::Text => {
            println!("issuer   {}", config.server.issuer);
            println!("password {PASSWORD} (every test person)");
            for p in &persons {
                println!(
                    "person   {}  {}  {}  level {}",
                    p["id_number"].as_str().unwrap_or_default(),
                    p["name"].as_str().unwrap_or_default(),
                    p["phone"].as_str().unwrap_or_default(),
                    p["level"]
                );
            }
            println!(
                "company  {}  {}",
                enterprise["credit_code"].as_str().unwrap_or_default(),
                enterprise["name"].as_str().unwrap_or_default()
            );
            for c in &clients {
                println!(
                    "client   {}  secret {}",
                    c["client_id"].as_str().unwrap_or_default(),
                    c["client_secret"].as_str().unwrap_or("(public)")
                );
            }
        }
    }
    Ok(())
}

/// Test person `i`, created unless its ID number is registered already.
async fn person(admin: &Admin, i: u32, now: i64) -> anyhow::Result<Value> {
    let number = person_number(i);
    let name = format!("测试用户{i:02}");
    let phone = format!("1990000{i:04}");
    // Levels 2, 3, 2, 3, ...: a register check, or a face check for a level-3 service.
    let (level, method) = if i.is_multiple_of(2) {
        (3, ProofMethod::FaceCheck)
    } else {
        (2, ProofMethod::RegisterCheck)
    };
    let existing = admin.identities.find(&number, now).await?;
    let account = match existing {
        Some(a) => a,
        None => {
            let new = NewAccount {
                documents: vec![Document::national(&number, now)?],
                name: PersonName::parse(&name)?,
                phone: Some(Phone::parse(&phone)?),
                email: Some(Email::parse(&format!("user{i:02}@sandbox.invalid"))?),
                evidence: Evidence::new(Level::new(level)?, method, "sandbox", now)?,
            };
            let id = AccountId::parse(&uuid::Uuid::new_v4().to_string())?;
            admin
                .identities
                .create_account(id, new, Some(&Password::new(PASSWORD)), now)
                .await?
        }
    };
    Ok(json!({
        "account_id": account.id.as_str(),
        "id_number": number,
        "name": name,
        "phone": phone,
        "level": account.evidence.level().get(),
    }))
}

/// The test enterprise: person 1 its legal representative, person 2 (if any) its agent for a year.
async fn enterprise(admin: &Admin, persons: &[Value], now: i64) -> anyhow::Result<Value> {
    let code = CreditCode::complete(ENTERPRISE).context("the sandbox credit code")?;
    let context = RequestContext::default();
    let ops = admin.administration(&context);
    let org = match ops.show_org(code.as_str()).await {
        Ok(org) => org,
        Err(AdminError::NotFound(_)) => {
            let new = NewOrg {
                credit_code: code.as_str().to_owned(),
                name: "测试科技有限公司".to_owned(),
            };
            ops.create_org(&new, now).await?
        }
        Err(e) => return Err(e.into()),
    };
    let roles = [
        ("legal_representative", None),
        ("agent", Some(now + 365 * 86_400)),
    ];
    let mut org = org;
    for (person, (role, expires_at)) in persons.iter().zip(roles) {
        let account = person["account_id"].as_str().unwrap_or_default();
        if org.members.iter().any(|m| m.account_id == account) {
            continue;
        }
        let new = NewMember {
            account_id: account.to_owned(),
            role: role.to_owned(),
            scope: None,
            expires_at,
            expires_on: None,
            granted_by: None,
        };
        org = ops.add_member(code.as_str(), &new, now).await?;
    }
    Ok(serde_json::to_value(&org)?)
}

/// The three sandbox clients; a confidential one that exists gets a new secret, so the output
/// always holds one that works.
async fn clients(admin: &Admin, base: &str, now: i64) -> anyhow::Result<Vec<Value>> {
    let context = RequestContext::default();
    let ops = admin.administration(&context);
    let person_scopes = "openid profile phone email idcard org offline_access";
    let specs = [
        ClientChange {
            client_id: Some("sandbox-web".into()),
            client_name: Some("测试网站 · Sandbox web system".into()),
            redirect_uris: Some(vec![format!("{base}/callback")]),
            post_logout_redirect_uris: Some(vec![format!("{base}/")]),
            grant_types: Some(vec!["authorization_code".into(), "refresh_token".into()]),
            scope: Some(person_scopes.into()),
            ..ClientChange::default()
        },
        ClientChange {
            client_id: Some("sandbox-app".into()),
            client_name: Some("测试应用 · Sandbox app".into()),
            redirect_uris: Some(vec![format!("{base}/app/callback")]),
            grant_types: Some(vec!["authorization_code".into(), "refresh_token".into()]),
            scope: Some(person_scopes.into()),
            token_endpoint_auth_method: Some("none".into()),
            ..ClientChange::default()
        },
        ClientChange {
            client_id: Some("sandbox-service".into()),
            client_name: Some("测试服务 · Sandbox service".into()),
            grant_types: Some(vec!["client_credentials".into()]),
            scope: Some("sandbox.read".into()),
            ..ClientChange::default()
        },
    ];
    let mut out = Vec::new();
    for spec in &specs {
        let id = spec.client_id.as_deref().unwrap_or_default();
        let client = match ops.show_client(id).await {
            Ok(existing) if existing.token_endpoint_auth_method == "none" => existing,
            Ok(_) => ops.rotate_client_secret(id, 0, now).await?,
            Err(AdminError::NotFound(_)) => ops.create_client(spec, now).await?,
            Err(e) => return Err(e.into()),
        };
        out.push(serde_json::to_value(&client)?);
    }
    Ok(out)
}
