//! `yihao account ...`: person accounts. Human output masks ID numbers and phone numbers; JSON
//! output masks them too unless `--reveal` is given (to be audited with the audit capability).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::{Admin, Output, audit_admin, now, read_password_stdin};
use crate::domain::account::{
    Account, AccountId, AccountStatus, Email, Evidence, Level, PersonName, ProofMethod,
};
use crate::domain::document::{Document, DocumentKind};
use crate::domain::identifiers::Phone;
use crate::protocol::accounts::NewAccount;
use crate::protocol::audit::{AuditEvent, AuditSink, EventType};

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Register a person account.
    Create(CreateAccount),
    /// Show one account, found by account id, ID number or phone number.
    Show {
        /// Account id, ID number (18 or legacy 15 digits) or mainland mobile number.
        account: String,
        /// Print ID numbers and phone numbers in full (the owner's explicit request).
        #[arg(long)]
        reveal: bool,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// List accounts, a page at a time, ordered by id.
    List {
        /// Start after this account id.
        #[arg(long)]
        after: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Lock an account (an administrator's lock, until unlocked).
    Lock(Target),
    /// Unlock or re-enable an account.
    Unlock(Target),
    /// Disable an account.
    Disable(Target),
    /// Record a new real-name level and how it was reached.
    SetLevel {
        account: String,
        #[arg(long)]
        level: u8,
        /// register_check, face_check, card_chip_face, certificate, electronic_licence, in_person, sms_code, self_declared.
        #[arg(long)]
        proof_method: String,
        /// Who checked (a register, a window, a system).
        #[arg(long, default_value = "")]
        proof_source: String,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Whether the account must always sign in with two factors (docs/assurance.md); one without a
    /// factor enrols one at its next sign-in.
    SecondFactor {
        account: String,
        /// true or false.
        #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
        required: bool,
    },
    /// List the account's second factors and how many recovery codes are left.
    Factors(Target),
    /// Remove second factors (after the person proved who they are, at a service window): one by
    /// its id, or all of them with the recovery codes.
    RemoveFactor {
        account: String,
        /// The factor's id (`yihao account factors`).
        #[arg(long, required_unless_present = "all")]
        factor: Option<String>,
        /// Every factor and every recovery code.
        #[arg(long)]
        all: bool,
    },
    /// Set a new password, read from the first line of standard input.
    SetPassword {
        account: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Import legacy accounts from department systems (JSON lines; see README).
    Import {
        /// The file to import; `-` for standard input.
        file: PathBuf,
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// Rows per transaction batch.
        #[arg(long, default_value_t = 500)]
        batch: usize,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
}

#[derive(Debug, Args)]
pub struct Target {
    /// Account id, ID number or phone number.
    account: String,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Debug, Args)]
pub struct CreateAccount {
    /// The identity document number (resident ID by default; residence permits and the
    /// permanent-residence card are recognised by their number).
    #[arg(long)]
    id_number: String,
    /// resident_id, hk_macao_residence_permit, taiwan_residence_permit, foreign_permanent_residence,
    /// hk_macao_travel_permit, taiwan_travel_permit, passport.
    #[arg(long)]
    doc_type: Option<String>,
    /// Issuing country of a passport (ISO 3166-1 alpha-3).
    #[arg(long)]
    country: Option<String>,
    #[arg(long)]
    name: String,
    #[arg(long)]
    phone: Option<String>,
    #[arg(long)]
    email: Option<String>,
    /// Real-name level 1-4 (docs/assurance.md).
    #[arg(long, default_value_t = 1)]
    level: u8,
    #[arg(long, default_value = "self_declared")]
    proof_method: String,
    #[arg(long, default_value = "operator")]
    proof_source: String,
    /// Read the initial password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

pub(super) async fn run(admin: &Admin, command: AccountCommand) -> anyhow::Result<()> {
    let ids = &admin.identities;
    let now = now();
    match command {
        AccountCommand::Create(args) => {
            let document = match &args.doc_type {
                Some(kind) => Document::parse(
                    DocumentKind::parse(kind)?,
                    args.country.as_deref(),
                    &args.id_number,
                    now,
                )?,
                None if args.country.is_some() => bail!("--country goes with --doc-type passport"),
                None => Document::national(&args.id_number, now)?,
            };
            let new = NewAccount {
                documents: vec![document],
                name: PersonName::parse(&args.name)?,
                phone: args.phone.as_deref().map(Phone::parse).transpose()?,
                email: args.email.as_deref().map(Email::parse).transpose()?,
                evidence: Evidence::new(
                    Level::new(args.level)?,
                    ProofMethod::parse(&args.proof_method)?,
                    &args.proof_source,
                    now,
                )?,
            };
            let password = if args.password_stdin {
                Some(read_password_stdin()?)
            } else {
                None
            };
            let id = AccountId::parse(&uuid::Uuid::new_v4().to_string())?;
            let account = ids.create_account(id, new, password.as_ref(), now).await?;
            audit_admin(
                admin,
                EventType::AdminAccount,
                account.id.as_str(),
                "create",
            )
            .await?;
            print_account(admin, &account, false, args.output).await
        }
        AccountCommand::Show {
            account,
            reveal,
            output,
        } => {
            let account = resolve(admin, &account, now).await?;
            if reveal {
                // Full numbers leave the system: an ID-number look-up in the audit log's terms.
                let event = AuditEvent::success(EventType::IdNumberLookup)
                    .actor("admin")
                    .target(account.id.as_str())
                    .details(serde_json::json!({ "reveal": true }));
                admin.audit.record(event).await?;
            }
            print_account(admin, &account, reveal, output).await
        }
        AccountCommand::List {
            after,
            limit,
            output,
        } => {
            let page = admin
                .store
                .accounts(after.as_deref(), limit.clamp(1, 10_000))
                .await?;
            let mut rows = Vec::with_capacity(page.len());
            for record in page {
                let docs = admin.store.account_documents(&record.id).await?;
                rows.push(ids.open(record, docs)?);
            }
            match output {
                Output::Json => {
                    let list: Vec<Value> =
                        rows.iter().map(|a| account_json(a, false, &[])).collect();
                    println!("{}", Value::Array(list));
                }
                Output::Text => {
                    for a in &rows {
                        println!(
                            "{}\t{}\t{}\tL{}\t{}",
                            a.id,
                            a.name.masked(),
                            a.documents
                                .first()
                                .map(Document::masked)
                                .unwrap_or_default(),
                            a.evidence.level().get(),
                            a.status.as_str()
                        );
                    }
                }
            }
            Ok(())
        }
        AccountCommand::Lock(t) => set_status(admin, t, AccountStatus::Locked, now).await,
        AccountCommand::Unlock(t) => set_status(admin, t, AccountStatus::Active, now).await,
        AccountCommand::Disable(t) => set_status(admin, t, AccountStatus::Disabled, now).await,
        AccountCommand::SetLevel {
            account,
            level,
            proof_method,
            proof_source,
            output,
        } => {
            let account = resolve(admin, &account, now).await?;
            let change = crate::protocol::admin::accounts::LevelChange {
                level,
                proof_method,
                proof_source,
            };
            let context = crate::protocol::audit::RequestContext::default();
            admin
                .administration(&context)
                .set_account_level(account.id.as_str(), &change, now)
                .await?;
            let account = resolve(admin, account.id.as_str(), now).await?;
            print_account(admin, &account, false, output).await
        }
        AccountCommand::SecondFactor { account, required } => {
            let account = resolve(admin, &account, now).await?;
            admin
                .store
                .set_second_factor_required(account.id.as_str(), required, now)
                .await?;
            let change = format!("second_factor_required:{required}");
            audit_admin(admin, EventType::AdminAccount, account.id.as_str(), &change).await?;
            eprintln!(
                "account {} {} two factors",
                account.id,
                if required { "must use" } else { "need not use" }
            );
            Ok(())
        }
        AccountCommand::Factors(target) => {
            let account = resolve(admin, &target.account, now).await?;
            let id = account.id.as_str();
            let factors = admin.store.factors_of(id).await?;
            let left = admin.store.recovery_codes_left(id).await?;
            let required = admin.store.second_factor_required(id).await?;
            match target.output {
                Output::Json => {
                    let list: Vec<Value> = factors
                        .iter()
                        .map(|f| {
                            json!({
                                "id": f.id, "kind": f.kind, "label": f.label,
                                "created_at": f.created_at, "last_used_at": f.last_used_at,
                            })
                        })
                        .collect();
                    let out = json!({
                        "factors": list, "recovery_codes_left": left,
                        "second_factor_required": required,
                    });
                    println!("{out}");
                }
                Output::Text => {
                    for f in &factors {
                        println!("{}  {:8}  {}", f.id, f.kind, f.label);
                    }
                    println!("recovery codes left: {left}; two factors required: {required}");
                }
            }
            Ok(())
        }
        AccountCommand::RemoveFactor {
            account,
            factor,
            all,
        } => {
            let account = resolve(admin, &account, now).await?;
            let id = account.id.as_str();
            let targets: Vec<String> = if all {
                admin
                    .store
                    .factors_of(id)
                    .await?
                    .into_iter()
                    .map(|f| f.id)
                    .collect()
            } else {
                factor.into_iter().collect()
            };
            for f in &targets {
                if !admin.store.remove_factor(id, f).await? {
                    bail!("account {id} has no factor {f}");
                }
                audit_admin(admin, EventType::FactorRemoved, id, &format!("factor:{f}")).await?;
            }
            if all {
                admin.store.replace_recovery_codes(id, &[], now).await?;
                audit_admin(admin, EventType::FactorRemoved, id, "recovery_codes").await?;
            }
            eprintln!("removed {} factor(s) of account {id}", targets.len());
            Ok(())
        }
        AccountCommand::SetPassword {
            account,
            password_stdin: _,
        } => {
            let account = resolve(admin, &account, now).await?;
            let password = read_password_stdin()?;
            ids.set_password(&account.id, &password, now).await?;
            audit_admin(
                admin,
                EventType::AdminAccount,
                account.id.as_str(),
                "set_password",
            )
            .await?;
            eprintln!("password changed for account {}", account.id);
            // Whoever held the old password is signed out everywhere.
            sign_out_everywhere(
                admin,
                &account,
                crate::protocol::session::EndReason::PasswordChanged,
                now,
            )
            .await
        }
        AccountCommand::Import {
            file,
            format,
            batch,
            output,
        } => {
            if format != "jsonl" {
                bail!("--format {format:?} is not supported (jsonl)");
            }
            let outcome = super::import::run(admin, &file, batch, output).await;
            let change = format!(
                "import:{}:{}",
                file.display(),
                if outcome.is_ok() { "done" } else { "stopped" }
            );
            audit_admin(admin, EventType::AdminAccount, "import", &change).await?;
            outcome
        }
    }
}

/// Through the admin operation: a locked or disabled account is signed out everywhere (security
/// review 17).
async fn set_status(
    admin: &Admin,
    target: Target,
    status: AccountStatus,
    now: i64,
) -> anyhow::Result<()> {
    let account = resolve(admin, &target.account, now).await?;
    let context = crate::protocol::audit::RequestContext::default();
    admin
        .administration(&context)
        .set_account_status(account.id.as_str(), status.as_str(), now)
        .await?;
    let account = resolve(admin, account.id.as_str(), now).await?;
    print_account(admin, &account, false, target.output).await
}

/// Ends every session of the account (services get a back-channel logout) and revokes its refresh
/// tokens.
async fn sign_out_everywhere(
    admin: &Admin,
    account: &Account,
    reason: crate::protocol::session::EndReason,
    now: i64,
) -> anyhow::Result<()> {
    let (ended, revoked) = admin
        .sessions()
        .sign_out_everywhere(admin.store.as_ref(), account.id.as_str(), reason, now)
        .await?;
    eprintln!("ended {ended} session(s), revoked {revoked} refresh token(s)");
    Ok(())
}

/// Finds an account by id, ID number or phone number.
pub(super) async fn resolve(admin: &Admin, key: &str, now: i64) -> anyhow::Result<Account> {
    let ids = &admin.identities;
    let by_id = match AccountId::parse(key) {
        Ok(id) if key.len() == 36 => ids.account(&id).await?,
        _ => None,
    };
    match by_id {
        Some(a) => Ok(a),
        None => {
            // A look-up by ID number or phone is itself audited (docs/security.md), never with the number.
            let found = ids.find(key, now).await?;
            let mut event = AuditEvent::success(EventType::IdNumberLookup).actor("admin");
            event.target = found.as_ref().map(|a| a.id.as_str().to_owned());
            event.success = found.is_some();
            admin.audit.record(event).await?;
            found.context("no such account")
        }
    }
}

/// Stable JSON field names. Numbers are masked unless `reveal`.
pub(crate) fn account_json(a: &Account, reveal: bool, legacy: &[(String, String)]) -> Value {
    let documents: Vec<Value> = a
        .documents
        .iter()
        .map(|d| {
            let mut v = json!({
                "type": d.kind().as_str(),
                "number": if reveal { d.number().to_owned() } else { d.masked() },
            });
            if !d.country().is_empty() {
                v["country"] = Value::from(d.country());
            }
            if let (true, Some(alias)) = (reveal, d.legacy_alias()) {
                v["legacy_alias"] = Value::from(alias);
            }
            v
        })
        .collect();
    json!({
        "account_id": a.id.as_str(),
        "name": if reveal { a.name.as_str().to_owned() } else { a.name.masked() },
        "documents": documents,
        "phone": a.phone.as_ref().map(|p| if reveal { p.as_str().to_owned() } else { p.masked() }),
        "email": a.email.as_ref().map(Email::as_str),
        "level": a.evidence.level().get(),
        "acr": a.evidence.level().acr(),
        "proof": {
            "method": a.evidence.method().as_str(),
            "source": a.evidence.source(),
            "verified_at": a.evidence.verified_at(),
        },
        "status": a.status.as_str(),
        "legacy_ids": legacy.iter().map(|(s, u)| json!({"source": s, "user_id": u})).collect::<Vec<_>>(),
        "created_at": a.created_at,
        "updated_at": a.updated_at,
    })
}

async fn print_account(
    admin: &Admin,
    account: &Account,
    reveal: bool,
    output: Output,
) -> anyhow::Result<()> {
    let legacy = admin.identities.legacy_ids(&account.id).await?;
    let value = account_json(account, reveal, &legacy);
    match output {
        Output::Json => println!("{value}"),
        Output::Text => super::print_text(&value),
    }
    Ok(())
}
