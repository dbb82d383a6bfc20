//! Accounts and administrator roles, administered by the security administrator: search by ID
//! number or phone (through the blind indexes), show masked, reveal a full number for a stated
//! reason (audited as a release in the person's disclosure ledger), lock, unlock, disable, set the
//! level, list and end sessions; grant and revoke administrator roles.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Actor, AdminError, Administration, Page, field};
use crate::domain::account::{Account, AccountId, AccountStatus, Evidence, Level, ProofMethod};
use crate::domain::admin::{Action, AdminRole, Grant};
use crate::domain::audit::{AuditEvent, EventType};
use crate::domain::identifiers::CreditCode;
use crate::protocol::session::EndReason;
use crate::store::{AdminRoleRecord, SessionRecord};

/// A person account as an administrator sees it: numbers and the name masked unless revealed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountView {
    pub account_id: String,
    pub name: String,
    pub documents: Vec<DocumentView>,
    pub phone: Option<String>,
    pub email: Option<String>,
    /// The real-name level, 1 to 4.
    pub level: u8,
    pub acr: String,
    pub proof_method: String,
    pub proof_source: String,
    pub verified_at: i64,
    /// `active`, `locked`, `disabled` or `closed`.
    pub status: String,
    /// The person's administrator role, if any.
    pub admin_role: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DocumentView {
    /// `resident_id`, `passport`, ...
    #[serde(rename = "type")]
    pub kind: String,
    pub number: String,
}

impl AccountView {
    pub fn of(a: &Account, reveal: bool, role: Option<&AdminRoleRecord>) -> Self {
        Self {
            account_id: a.id.as_str().to_owned(),
            name: if reveal {
                a.name.as_str().to_owned()
            } else {
                a.name.masked()
            },
            documents: a
                .documents
                .iter()
                .map(|d| DocumentView {
                    kind: d.kind().as_str().to_owned(),
                    number: if reveal {
                        d.number().to_owned()
                    } else {
                        d.masked()
                    },
                })
                .collect(),
            phone: a.phone.as_ref().map(|p| {
                if reveal {
                    p.as_str().to_owned()
                } else {
                    p.masked()
                }
            }),
            email: a.email.as_ref().map(|e| e.as_str().to_owned()),
            level: a.evidence.level().get(),
            acr: a.evidence.level().acr().to_owned(),
            proof_method: a.evidence.method().as_str().to_owned(),
            proof_source: a.evidence.source().to_owned(),
            verified_at: a.evidence.verified_at(),
            status: a.status.as_str().to_owned(),
            admin_role: role.map(|r| r.role.clone()),
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// An SSO session of an account.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionView {
    pub sid: String,
    pub channel: String,
    pub client_id: String,
    pub clients: Vec<String>,
    pub level: i64,
    pub amr: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub ended_at: Option<i64>,
    pub end_reason: Option<String>,
}

impl From<SessionRecord> for SessionView {
    fn from(r: SessionRecord) -> Self {
        Self {
            sid: r.sid,
            channel: r.channel,
            client_id: r.client_id,
            clients: r.clients,
            level: r.level,
            amr: r.amr,
            created_at: r.created_at,
            last_seen_at: r.last_seen_at,
            expires_at: r.expires_at,
            ended_at: r.ended_at,
            end_reason: r.end_reason,
        }
    }
}

/// A new real-name level and the evidence for it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LevelChange {
    /// 1 to 4.
    pub level: u8,
    /// `self_declared`, `sms_code`, `register_check`, `face_check`, `card_chip_face`, `certificate`,
    /// `electronic_licence`, `in_person`, `legacy_import`.
    pub proof_method: String,
    /// Who checked (a register, a service window).
    pub proof_source: String,
}

/// A recovery code sent.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecoveryCodeSent {
    /// Where it went, masked.
    pub phone: String,
    /// Seconds before another code may be sent to the number.
    pub resend_after: u64,
}

/// An administrator role as listed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RoleView {
    pub account_id: String,
    pub role: String,
    pub department: Option<String>,
    pub granted_at: i64,
    pub granted_by: String,
}

impl From<AdminRoleRecord> for RoleView {
    fn from(r: AdminRoleRecord) -> Self {
        Self {
            account_id: r.account_id,
            role: r.role,
            department: r.department,
            granted_at: r.granted_at,
            granted_by: r.granted_by,
        }
    }
}

/// The smallest reason an administrator may give for revealing a number.
const MIN_REASON_CHARS: usize = 4;

impl Administration<'_> {
    async fn account_by_id(&self, id: &str) -> Result<Account, AdminError> {
        let parsed = AccountId::parse(id).map_err(field("account_id"))?;
        self.identities
            .account(&parsed)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("account {id}")))
    }

    /// The account an ID number (18 or 15 digits, or a residence-permit number) or a mainland
    /// mobile number names, through the blind indexes (one indexed look-up). Audited as an
    /// `id_number_lookup`, never with the number.
    pub async fn search_accounts(
        &self,
        query: &str,
        now: i64,
    ) -> Result<Vec<AccountView>, AdminError> {
        self.allow(Action::AccountsSearch, None).await?;
        let query = query.trim();
        if query.is_empty() || query.chars().count() > 64 {
            return Err(AdminError::invalid(
                "q",
                "an ID number or a mobile number (1 to 64 characters)",
            ));
        }
        let found = self.identities.find(query, now).await?;
        let mut event =
            AuditEvent::success(EventType::IdNumberLookup).actor(self.actor.audit_name());
        event.target = found.as_ref().map(|a| a.id.as_str().to_owned());
        event.success = found.is_some();
        self.audit.record(event).await?;
        let mut out = Vec::new();
        if let Some(account) = found {
            let role = self.admins.role_of(account.id.as_str()).await?;
            out.push(AccountView::of(&account, false, role.as_ref()));
        }
        Ok(out)
    }

    /// Accounts whose name starts with `prefix` (1 to 20 characters), masked, by name then id, a
    /// page of `limit` after the account `after`. Bounded: an indexed range scan and one document
    /// read per account shown. Audited with the prefix (who looked for whom).
    pub async fn search_accounts_by_name(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<AccountView>, AdminError> {
        self.allow(Action::AccountsSearch, None).await?;
        let prefix = prefix.trim();
        let chars = prefix.chars().count();
        if chars == 0 || chars > 20 || prefix.chars().any(char::is_control) {
            return Err(AdminError::invalid(
                "name",
                "the beginning of a name: 1 to 20 printable characters",
            ));
        }
        let cursor = match after {
            Some(id) => {
                let record =
                    self.identities.accounts.account(id).await?.ok_or_else(|| {
                        AdminError::invalid("after", "not a cursor of this search")
                    })?;
                Some((record.name, record.id))
            }
            None => None,
        };
        let rows = self
            .identities
            .accounts
            .accounts_by_name(
                prefix,
                cursor.as_ref().map(|(n, i)| (n.as_str(), i.as_str())),
                limit as i64 + 1,
            )
            .await?;
        let more = rows.len() > limit;
        // Each account's documents and role, read concurrently (a page is up to 200 accounts:
        // the pool bounds how many run at once).
        let opened = rows.into_iter().take(limit).map(|record| async move {
            let documents = self
                .identities
                .accounts
                .account_documents(&record.id)
                .await?;
            let role = self.admins.role_of(&record.id).await?;
            let account = self.identities.open(record, documents)?;
            Ok::<_, AdminError>(AccountView::of(&account, false, role.as_ref()))
        });
        let items = futures_util::future::try_join_all(opened).await?;
        let next = more
            .then(|| items.last().map(|a| a.account_id.clone()))
            .flatten();
        self.read(
            Action::AccountsSearch,
            None,
            serde_json::json!({ "by": "name", "prefix": prefix, "found": items.len() }),
        )
        .await?;
        Ok(Page { items, next })
    }

    /// One account, masked.
    pub async fn show_account(&self, id: &str) -> Result<AccountView, AdminError> {
        self.allow(Action::AccountsRead, Some(id)).await?;
        let account = self.account_by_id(id).await?;
        let role = self.admins.role_of(account.id.as_str()).await?;
        self.read(Action::AccountsRead, Some(id), serde_json::json!({}))
            .await?;
        Ok(AccountView::of(&account, false, role.as_ref()))
    }

    /// One account with its numbers and name in full, for `reason`: audited as an attribute
    /// release to the administrator, so it appears in the person's disclosure ledger.
    pub async fn reveal_account(&self, id: &str, reason: &str) -> Result<AccountView, AdminError> {
        self.allow(Action::AccountsReveal, Some(id)).await?;
        let reason = reason.trim();
        if reason.chars().count() < MIN_REASON_CHARS || reason.chars().count() > 500 {
            return Err(AdminError::invalid(
                "reason",
                "state why the full numbers are needed (4 to 500 characters)",
            ));
        }
        let account = self.account_by_id(id).await?;
        let role = self.admins.role_of(account.id.as_str()).await?;
        let event = AuditEvent::success(EventType::AttributeRelease)
            .actor(self.actor.audit_name())
            .target(account.id.as_str())
            .details(serde_json::json!({
                "claims": ["name", "id_number", "phone_number"],
                "via": "administrator",
                "reason": reason,
                "role": self.actor.role().map(AdminRole::as_str),
            }));
        self.audit.record(event).await?;
        Ok(AccountView::of(&account, true, role.as_ref()))
    }

    /// Locks, unlocks (to active) or disables an account. A locked or disabled account is signed
    /// out everywhere: its sessions end (with back-channel logout) and its refresh tokens are
    /// revoked.
    pub async fn set_account_status(
        &self,
        id: &str,
        status: &str,
        now: i64,
    ) -> Result<AccountView, AdminError> {
        self.allow(Action::AccountsWrite, Some(id)).await?;
        let status = match status {
            "active" => AccountStatus::Active,
            "locked" => AccountStatus::Locked,
            "disabled" => AccountStatus::Disabled,
            _ => {
                return Err(AdminError::invalid(
                    "status",
                    "active (unlock), locked or disabled; only the owner closes an account",
                ));
            }
        };
        let account = self.account_by_id(id).await?;
        if account.status == AccountStatus::Closed {
            return Err(AdminError::Conflict(
                "the owner closed this account; it is waiting to be erased".into(),
            ));
        }
        let account = self.identities.set_status(&account.id, status, now).await?;
        let mut details = serde_json::json!({ "change": format!("status:{}", status.as_str()) });
        if status != AccountStatus::Active {
            let (ended, revoked) = self
                .sessions
                .sign_out_everywhere(self.refresh, account.id.as_str(), EndReason::Admin, now)
                .await?;
            details["sessions_ended"] = ended.into();
            details["refresh_revoked"] = revoked.into();
        }
        self.record(EventType::AdminAccount, Some(id), details)
            .await?;
        let role = self.admins.role_of(account.id.as_str()).await?;
        Ok(AccountView::of(&account, false, role.as_ref()))
    }

    pub async fn set_account_level(
        &self,
        id: &str,
        change: &LevelChange,
        now: i64,
    ) -> Result<AccountView, AdminError> {
        self.allow(Action::AccountsWrite, Some(id)).await?;
        let account = self.account_by_id(id).await?;
        let evidence = Evidence::new(
            Level::new(change.level).map_err(field("level"))?,
            ProofMethod::parse(&change.proof_method).map_err(field("proof_method"))?,
            &change.proof_source,
            now,
        )
        .map_err(field("proof_source"))?;
        let account = self
            .identities
            .set_evidence(&account.id, evidence, now)
            .await?;
        self.record(
            EventType::AdminAccount,
            Some(id),
            serde_json::json!({ "change": format!("level:{}", change.level) }),
        )
        .await?;
        let role = self.admins.role_of(account.id.as_str()).await?;
        Ok(AccountView::of(&account, false, role.as_ref()))
    }

    /// A recovery code to the account's phone, at the service desk's request (a person who cannot
    /// receive or find the code otherwise: the desk has checked who they are). The person then
    /// recovers the password at `/recover` with their document and name, and this code (valid
    /// `sms.code_secs`; a recovery started within the resend gate sends no other). The same limits
    /// as every code (the resend gate, the daily caps per number). Audited as `sms_code_sent` with
    /// the administrator as actor.
    pub async fn send_recovery_code(
        &self,
        id: &str,
        now: i64,
    ) -> Result<RecoveryCodeSent, AdminError> {
        use crate::protocol::outside::SmsPurpose;
        use crate::protocol::sms_code::{Delivery, SendRefused};
        self.allow(Action::AccountsWrite, Some(id)).await?;
        let account = self.account_by_id(id).await?;
        if !matches!(
            account.status,
            AccountStatus::Active | AccountStatus::Locked
        ) {
            return Err(AdminError::Conflict(format!(
                "account {id} is {}: it cannot recover a password",
                account.status.as_str()
            )));
        }
        let Some(phone) = account.phone.as_ref() else {
            return Err(AdminError::Conflict(format!(
                "account {id} has no mobile number on file"
            )));
        };
        let Some(codes) = &self.sms else {
            return Err(AdminError::Conflict(
                "SMS codes are not offered here (sms.adapter)".into(),
            ));
        };
        let source = self.audit.context.source();
        let sent = codes
            .send(
                SmsPurpose::Recover,
                phone,
                Delivery::Send,
                source.as_deref(),
                &codes.config.text_zh,
                now,
            )
            .await
            .map_err(|e| match e {
                SendRefused::TooSoon { .. } | SendRefused::DailyCap { .. } => {
                    AdminError::Conflict(e.to_string())
                }
                SendRefused::Gateway(_) => AdminError::Busy,
                SendRefused::Store(e) => e.into(),
            })?;
        self.record(
            EventType::SmsCodeSent,
            Some(id),
            serde_json::json!({ "purpose": "recover", "by": "administrator" }),
        )
        .await?;
        Ok(RecoveryCodeSent {
            phone: phone.masked(),
            resend_after: sent.resend_after,
        })
    }

    /// An account's sessions, newest first (ended ones too when `include_ended`).
    pub async fn account_sessions(
        &self,
        id: &str,
        include_ended: bool,
    ) -> Result<Vec<SessionView>, AdminError> {
        self.allow(Action::AccountsRead, Some(id)).await?;
        let account = self.account_by_id(id).await?;
        let rows = self
            .sessions
            .rows
            .sessions_of(account.id.as_str(), include_ended)
            .await?;
        self.read(
            Action::AccountsRead,
            Some(id),
            serde_json::json!({ "sessions": rows.len() }),
        )
        .await?;
        Ok(rows.into_iter().map(SessionView::from).collect())
    }

    /// Ends one session of the account (`sid`), or all of them; how many ended.
    pub async fn end_account_sessions(
        &self,
        id: &str,
        sid: Option<&str>,
        now: i64,
    ) -> Result<usize, AdminError> {
        self.allow(Action::AccountsWrite, Some(id)).await?;
        let account = self.account_by_id(id).await?;
        let ended = match sid {
            Some(sid) => {
                let row = self.sessions.rows.session(sid).await?;
                if row.is_none_or(|r| r.account_id != account.id.as_str()) {
                    return Err(AdminError::NotFound(format!("session {sid}")));
                }
                usize::from(self.sessions.end(sid, EndReason::Admin, now).await?)
            }
            None => {
                self.sessions
                    .end_all(account.id.as_str(), EndReason::Admin, now)
                    .await?
            }
        };
        self.record(
            EventType::AdminSession,
            Some(id),
            serde_json::json!({ "change": "end", "sid": sid, "ended": ended }),
        )
        .await?;
        Ok(ended)
    }

    /// Every administrator.
    pub async fn list_roles(&self) -> Result<Vec<RoleView>, AdminError> {
        self.allow(Action::RolesRead, None).await?;
        let roles = self.admins.admin_roles().await?;
        self.read(
            Action::RolesRead,
            None,
            serde_json::json!({ "count": roles.len() }),
        )
        .await?;
        Ok(roles.into_iter().map(RoleView::from).collect())
    }

    /// Gives an account an administrator role. The account must be active and hold no other role
    /// (one role per account: the separation of duties); from now on it must sign in with two
    /// factors. Nobody grants a role to themselves.
    pub async fn grant_role(
        &self,
        account_id: &str,
        role: &str,
        department: Option<&str>,
        now: i64,
    ) -> Result<RoleView, AdminError> {
        self.allow(Action::RolesWrite, Some(account_id)).await?;
        let account = self.account_by_id(account_id).await?;
        self.not_self(&account.id)?;
        if account.status != AccountStatus::Active {
            return Err(AdminError::Conflict(format!(
                "account {account_id} is {}",
                account.status.as_str()
            )));
        }
        let role = AdminRole::parse(role).map_err(field("role"))?;
        let department = department
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(CreditCode::parse)
            .transpose()
            .map_err(field("department"))?;
        let grant =
            Grant::new(account.id.clone(), role, department).map_err(field("department"))?;
        if let Some(held) = self.admins.role_of(account_id).await? {
            return Err(AdminError::Conflict(format!(
                "account {account_id} holds the {} administrator role already: one role per \
                 account (revoke it first)",
                held.role
            )));
        }
        let record = AdminRoleRecord {
            account_id: account_id.to_owned(),
            role: grant.role().as_str().to_owned(),
            department: grant.department().map(|d| d.as_str().to_owned()),
            granted_at: now,
            granted_by: self.actor.audit_name(),
        };
        // Administrators sign in with two factors (docs/administration.md): the rule first, so a
        // role is never held without it.
        self.factors
            .set_second_factor_required(account_id, true, now)
            .await?;
        self.admins.grant_role(&record).await?;
        self.record(
            EventType::AdminRole,
            Some(account_id),
            serde_json::json!({
                "change": "grant",
                "granted": grant.role().as_str(),
                "department": record.department,
            }),
        )
        .await?;
        Ok(record.into())
    }

    /// Takes an account's administrator role away and ends its sessions (a console open in its
    /// browser stops at once). The two-factor rule stays.
    pub async fn revoke_role(&self, account_id: &str, now: i64) -> Result<(), AdminError> {
        self.allow(Action::RolesWrite, Some(account_id)).await?;
        let account = self.account_by_id(account_id).await?;
        self.not_self(&account.id)?;
        let Some(held) = self.admins.role_of(account_id).await? else {
            return Err(AdminError::NotFound(format!(
                "an administrator role of account {account_id}"
            )));
        };
        self.admins.revoke_role(account_id).await?;
        let ended = self
            .sessions
            .end_all(account_id, EndReason::Admin, now)
            .await?;
        self.record(
            EventType::AdminRole,
            Some(account_id),
            serde_json::json!({ "change": "revoke", "revoked": held.role, "sessions_ended": ended }),
        )
        .await
    }

    fn not_self(&self, account: &AccountId) -> Result<(), AdminError> {
        if self.actor.account() == Some(account) {
            return Err(AdminError::Denied(
                "nobody changes their own administrator role".into(),
            ));
        }
        Ok(())
    }
}

/// The grant an account holds, as the admin API's actor (`None`: no role).
pub fn grant_of(record: &AdminRoleRecord) -> Option<Grant> {
    let account = AccountId::parse(&record.account_id).ok()?;
    let role = AdminRole::parse(&record.role).ok()?;
    let department = record
        .department
        .as_deref()
        .map(CreditCode::parse)
        .transpose()
        .ok()?;
    Grant::new(account, role, department).ok()
}

/// The actor for a person holding `record`'s role.
pub fn person_actor(record: &AdminRoleRecord) -> Option<Actor> {
    grant_of(record).map(Actor::Person)
}
