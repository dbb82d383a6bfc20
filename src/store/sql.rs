//! What the SQL adapters share, compiled once: the portable statements, the row types and their
//! conversion to domain values, and the error mapping. The code that runs the statements is in
//! `store/sql_engine/`, compiled once per engine (see its module documentation).

use crate::domain::client::{
    AuthMethod, CasService, Channel, Client, ClientId, ClientSecrets, ClientSettings, ClientSpec,
    GrantType, RedirectUri, Scope, SealedSecret, SecretHash,
};
use crate::domain::jose::Alg;

use super::StoreError;
use crate::domain::account::AccountId;
use crate::domain::identifiers::{CreditCode, IdentifierError};
use crate::domain::organisation::{
    Membership, OrgId, OrgStatus, Organisation, Role, Scope as OrgScope,
};

pub(crate) const INSERT_CLIENT: &str = "INSERT INTO clients (id, name, auth_method, redirect_uris, \
     post_logout_redirect_uris, grant_types, scopes, first_party, secret_hash, previous_secret_hash, \
     previous_secret_expires_at, created_at, updated_at, id_token_signed_response_alg, access_token_secs, \
     id_token_secs, full_phone, access_token_signed_response_alg, resources, jwks, jwks_uri, \
     backchannel_logout_uri, backchannel_logout_session_required, frontchannel_logout_uri, \
     frontchannel_logout_session_required, secret_sealed, previous_secret_sealed, channel, pkce_optional, min_level, location, \
     department, cas_services, pending, registration_token_hash) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, \
     $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35)";
pub(crate) const UPDATE_CLIENT: &str = "UPDATE clients SET name = $2, auth_method = $3, \
     redirect_uris = $4, post_logout_redirect_uris = $5, grant_types = $6, scopes = $7, \
     first_party = $8, secret_hash = $9, previous_secret_hash = $10, \
     previous_secret_expires_at = $11, created_at = $12, updated_at = $13, \
     id_token_signed_response_alg = $14, access_token_secs = $15, id_token_secs = $16, full_phone = $17, \
     access_token_signed_response_alg = $18, resources = $19, jwks = $20, jwks_uri = $21, \
     backchannel_logout_uri = $22, backchannel_logout_session_required = $23, frontchannel_logout_uri = $24, \
     frontchannel_logout_session_required = $25, secret_sealed = $26, previous_secret_sealed = $27, \
     channel = $28, pkce_optional = $29, min_level = $30, location = $31, \
     department = $32, cas_services = $33, pending = $34, registration_token_hash = $35 WHERE id = $1";
pub(crate) const SELECT_CLIENT: &str = "SELECT * FROM clients WHERE id = $1";
pub(crate) const SELECT_CLIENTS: &str = "SELECT * FROM clients ORDER BY id";
pub(crate) const DELETE_CLIENT: &str = "DELETE FROM clients WHERE id = $1";

/// A `clients` row as both engines return it.
#[derive(sqlx::FromRow)]
pub(crate) struct ClientRow {
    pub id: String,
    pub name: String,
    pub auth_method: String,
    pub redirect_uris: String,
    pub post_logout_redirect_uris: String,
    pub grant_types: String,
    pub scopes: String,
    pub first_party: bool,
    pub secret_hash: Option<Vec<u8>>,
    pub previous_secret_hash: Option<Vec<u8>>,
    pub previous_secret_expires_at: Option<i64>,
    pub secret_sealed: Option<Vec<u8>>,
    pub previous_secret_sealed: Option<Vec<u8>>,
    pub created_at: i64,
    pub updated_at: i64,
    pub id_token_signed_response_alg: Option<String>,
    pub access_token_secs: Option<i64>,
    pub id_token_secs: Option<i64>,
    pub full_phone: bool,
    pub access_token_signed_response_alg: Option<String>,
    pub resources: String,
    pub jwks: Option<String>,
    pub jwks_uri: Option<String>,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
    pub frontchannel_logout_uri: Option<String>,
    pub frontchannel_logout_session_required: bool,
    pub channel: String,
    pub pkce_optional: bool,
    pub min_level: Option<i64>,
    pub location: Option<String>,
    pub department: Option<String>,
    pub cas_services: String,
    pub pending: bool,
    pub registration_token_hash: Option<Vec<u8>>,
}

impl ClientRow {
    pub fn from_client(c: &Client) -> Self {
        let json = |items: Vec<&str>| serde_json::to_string(&items).unwrap_or_default();
        let secrets = c.secrets();
        Self {
            id: c.id().as_str().to_owned(),
            name: c.name().to_owned(),
            auth_method: c.auth_method().as_str().to_owned(),
            redirect_uris: json(c.redirect_uris().iter().map(RedirectUri::as_str).collect()),
            post_logout_redirect_uris: json(
                c.post_logout_redirect_uris()
                    .iter()
                    .map(RedirectUri::as_str)
                    .collect(),
            ),
            grant_types: json(c.grant_types().iter().map(|g| g.as_str()).collect()),
            scopes: json(c.scopes().iter().map(Scope::as_str).collect()),
            first_party: c.first_party(),
            secret_hash: secrets.map(|s| s.current.0.to_vec()),
            previous_secret_hash: secrets.and_then(|s| s.previous).map(|(h, _)| h.0.to_vec()),
            previous_secret_expires_at: secrets.and_then(|s| s.previous).map(|(_, at)| at),
            secret_sealed: secrets.and_then(|s| s.sealed.as_ref()).map(|s| s.0.clone()),
            previous_secret_sealed: secrets
                .and_then(|s| s.previous_sealed.as_ref())
                .map(|s| s.0.clone()),
            created_at: c.created_at(),
            updated_at: c.updated_at(),
            id_token_signed_response_alg: c.settings().id_token_alg.map(|a| a.as_str().to_owned()),
            access_token_secs: c.settings().access_token_secs.map(i64::from),
            id_token_secs: c.settings().id_token_secs.map(i64::from),
            full_phone: c.settings().full_phone,
            access_token_signed_response_alg: c
                .settings()
                .access_token_alg
                .map(|a| a.as_str().to_owned()),
            resources: serde_json::to_string(&c.settings().resources)
                .unwrap_or_else(|_| "[]".into()),
            jwks: c.settings().jwks.clone(),
            jwks_uri: c.settings().jwks_uri.clone(),
            backchannel_logout_uri: c.settings().backchannel_logout_uri.clone(),
            backchannel_logout_session_required: c.settings().backchannel_logout_session_required,
            frontchannel_logout_uri: c.settings().frontchannel_logout_uri.clone(),
            frontchannel_logout_session_required: c.settings().frontchannel_logout_session_required,
            channel: c.settings().channel.as_str().to_owned(),
            pkce_optional: c.settings().pkce_optional,
            min_level: c.settings().min_level.map(i64::from),
            location: c.settings().location.clone(),
            department: c
                .settings()
                .department
                .as_ref()
                .map(|d| d.as_str().to_owned()),
            cas_services: json(
                c.settings()
                    .cas_services
                    .iter()
                    .map(CasService::as_str)
                    .collect(),
            ),
            pending: c.settings().pending,
            registration_token_hash: c.settings().registration_token.map(|h| h.0.to_vec()),
        }
    }

    pub fn into_client(self) -> Result<Client, StoreError> {
        let id = self.id.clone();
        let corrupt = move |what: &str| StoreError::Corrupt(format!("client {id}: {what}"));
        fn list<T>(
            raw: &str,
            parse: impl Fn(&str) -> Result<T, crate::domain::client::ClientError>,
        ) -> Result<Vec<T>, Box<dyn std::error::Error>> {
            let items: Vec<String> = serde_json::from_str(raw)?;
            Ok(items.iter().map(|s| parse(s)).collect::<Result<_, _>>()?)
        }
        let hash = |bytes: Vec<u8>| -> Result<SecretHash, StoreError> {
            bytes
                .try_into()
                .map(SecretHash)
                .map_err(|_| corrupt("secret hash is not 32 bytes"))
        };
        let secrets = match self.secret_hash {
            None => None,
            Some(current) => Some(ClientSecrets {
                current: hash(current)?,
                previous: match (self.previous_secret_hash, self.previous_secret_expires_at) {
                    (Some(h), Some(at)) => Some((hash(h)?, at)),
                    _ => None,
                },
                sealed: self.secret_sealed.map(SealedSecret),
                previous_sealed: self.previous_secret_sealed.map(SealedSecret),
            }),
        };
        let spec = ClientSpec {
            id: ClientId::parse(&self.id).map_err(|e| corrupt(&e.to_string()))?,
            name: self.name,
            auth_method: AuthMethod::parse(&self.auth_method)
                .map_err(|e| corrupt(&e.to_string()))?,
            redirect_uris: list(&self.redirect_uris, RedirectUri::parse)
                .map_err(|e| corrupt(&e.to_string()))?,
            post_logout_redirect_uris: list(
                &self.post_logout_redirect_uris,
                RedirectUri::parse_post_logout,
            )
            .map_err(|e| corrupt(&e.to_string()))?,
            grant_types: list(&self.grant_types, GrantType::parse)
                .map_err(|e| corrupt(&e.to_string()))?,
            scopes: list(&self.scopes, Scope::parse).map_err(|e| corrupt(&e.to_string()))?,
            first_party: self.first_party,
            settings: ClientSettings {
                id_token_alg: self
                    .id_token_signed_response_alg
                    .as_deref()
                    .map(Alg::parse)
                    .transpose()
                    .map_err(|e| corrupt(&e.to_string()))?,
                access_token_secs: self.access_token_secs.and_then(|s| u32::try_from(s).ok()),
                id_token_secs: self.id_token_secs.and_then(|s| u32::try_from(s).ok()),
                full_phone: self.full_phone,
                access_token_alg: self
                    .access_token_signed_response_alg
                    .as_deref()
                    .map(Alg::parse)
                    .transpose()
                    .map_err(|e| corrupt(&e.to_string()))?,
                resources: serde_json::from_str(&self.resources)
                    .map_err(|e| corrupt(&e.to_string()))?,
                jwks: self.jwks.clone(),
                jwks_uri: self.jwks_uri.clone(),
                backchannel_logout_uri: self.backchannel_logout_uri.clone(),
                backchannel_logout_session_required: self.backchannel_logout_session_required,
                frontchannel_logout_uri: self.frontchannel_logout_uri.clone(),
                frontchannel_logout_session_required: self.frontchannel_logout_session_required,
                channel: Channel::parse(&self.channel).map_err(|e| corrupt(&e.to_string()))?,
                pkce_optional: self.pkce_optional,
                min_level: self
                    .min_level
                    .map(|l| u8::try_from(l).map_err(|e| corrupt(&e.to_string())))
                    .transpose()?,
                location: self.location.clone(),
                department: self
                    .department
                    .as_deref()
                    .map(CreditCode::parse)
                    .transpose()
                    .map_err(|e| corrupt(&e.to_string()))?,
                cas_services: list(&self.cas_services, CasService::parse)
                    .map_err(|e| corrupt(&e.to_string()))?,
                pending: self.pending,
                registration_token: self.registration_token_hash.map(hash).transpose()?,
            },
        };
        Client::restore(spec, secrets, self.created_at, self.updated_at)
            .map_err(|e| corrupt(&e.to_string()))
    }
}

/// An `organisations` row.
#[derive(sqlx::FromRow)]
pub(crate) struct OrgRow {
    pub id: String,
    pub credit_code: String,
    pub name: String,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl OrgRow {
    pub fn into_org(self) -> Result<Organisation, StoreError> {
        let corrupt =
            |e: IdentifierError| StoreError::Corrupt(format!("organisation {}: {e}", self.id));
        Ok(Organisation {
            id: OrgId::parse(&self.id).map_err(corrupt)?,
            credit_code: CreditCode::parse(&self.credit_code).map_err(corrupt)?,
            name: self.name.clone(),
            status: OrgStatus::parse(&self.status).map_err(corrupt)?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// An `org_members` row.
#[derive(sqlx::FromRow)]
pub(crate) struct MemberRow {
    pub org_id: String,
    pub account_id: String,
    pub role: String,
    pub scope: String,
    pub expires_at: Option<i64>,
    pub granted_by: Option<String>,
    pub granted_at: i64,
}

impl MemberRow {
    pub fn from_membership(m: &Membership) -> Self {
        Self {
            org_id: m.org_id.as_str().to_owned(),
            account_id: m.account_id.as_str().to_owned(),
            role: m.role.as_str().to_owned(),
            scope: serde_json::to_string(&m.scope.to_list()).unwrap_or_default(),
            expires_at: m.expires_at,
            granted_by: m.granted_by.as_ref().map(|a| a.as_str().to_owned()),
            granted_at: m.granted_at,
        }
    }

    pub fn into_membership(self) -> Result<Membership, StoreError> {
        let corrupt = |e: String| {
            StoreError::Corrupt(format!(
                "membership {}/{}: {e}",
                self.org_id, self.account_id
            ))
        };
        let items: Vec<String> =
            serde_json::from_str(&self.scope).map_err(|e| corrupt(e.to_string()))?;
        Ok(Membership {
            org_id: OrgId::parse(&self.org_id).map_err(|e| corrupt(e.0))?,
            account_id: AccountId::parse(&self.account_id).map_err(|e| corrupt(e.0))?,
            role: Role::parse(&self.role).map_err(|e| corrupt(e.0))?,
            scope: OrgScope::parse(&items).map_err(|e| corrupt(e.0))?,
            expires_at: self.expires_at,
            granted_by: self
                .granted_by
                .as_deref()
                .map(AccountId::parse)
                .transpose()
                .map_err(|e| corrupt(e.0))?,
            granted_at: self.granted_at,
        })
    }
}

/// Maps a driver error: unique violations are conflicts on `what`, lost connections are
/// `Unavailable`, the rest are backend errors.
pub(crate) fn db_error(what: impl FnOnce() -> String, e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            // The constraint (PostgreSQL) or message (SQLite) says which value was taken.
            let said = format!("{} {}", d.constraint().unwrap_or_default(), d.message());
            let named = [
                ("phone", "phone"),
                ("account_documents", "document"),
                ("legacy_ids", "legacy id"),
                ("one_legal_representative", "legal representative"),
                ("credit_code", "organisation"),
            ]
            .into_iter()
            .find(|(needle, _)| said.contains(needle));
            StoreError::Conflict(named.map_or_else(what, |(_, name)| name.to_owned()))
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::unavailable(what(), e)
        }
        _ => StoreError::backend(what(), e),
    }
}

pub(crate) fn migrate_error(e: sqlx::migrate::MigrateError) -> StoreError {
    StoreError::backend("migration failed", e)
}

/// A `sessions` row as stored: the clients that received tokens are a JSON array in one column.
#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    sid: String,
    account_id: String,
    channel: String,
    client_id: String,
    clients: String,
    ip: Option<String>,
    user_agent: Option<String>,
    level: i64,
    amr: String,
    created_at: i64,
    last_seen_at: i64,
    expires_at: i64,
    ended_at: Option<i64>,
    end_reason: Option<String>,
}

impl From<SessionRow> for super::SessionRecord {
    fn from(r: SessionRow) -> Self {
        Self {
            sid: r.sid,
            account_id: r.account_id,
            channel: r.channel,
            client_id: r.client_id,
            // Written only by `insert_session` and `touch_session`, always a JSON array.
            clients: serde_json::from_str(&r.clients).unwrap_or_default(),
            ip: r.ip,
            user_agent: r.user_agent,
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

/// The JSON column of a client list.
pub(crate) fn clients_column(clients: &[String]) -> String {
    serde_json::Value::from(clients).to_string()
}

/// An `audit_log` row as stored.
#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    seq: i64,
    at_ms: i64,
    node: String,
    event: String,
    result: String,
    actor: Option<String>,
    target: Option<String>,
    client_id: Option<String>,
    channel: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    acr: Option<String>,
    request_id: Option<String>,
    reason: Option<String>,
    details: Option<String>,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

impl From<AuditRow> for crate::domain::audit::AuditRecord {
    fn from(r: AuditRow) -> Self {
        Self {
            seq: r.seq,
            at_ms: r.at_ms,
            node: r.node,
            event: r.event,
            result: r.result,
            actor: r.actor,
            target: r.target,
            client_id: r.client_id,
            channel: r.channel,
            ip: r.ip,
            user_agent: r.user_agent,
            acr: r.acr,
            request_id: r.request_id,
            reason: r.reason,
            details: r.details,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

/// An `audit_checkpoints` row as stored.
#[derive(sqlx::FromRow)]
pub(crate) struct CheckpointRow {
    seq: i64,
    hash: Vec<u8>,
    at_ms: i64,
    jws: String,
}

impl From<CheckpointRow> for crate::domain::audit::CheckpointRecord {
    fn from(r: CheckpointRow) -> Self {
        Self {
            seq: r.seq,
            hash: r.hash,
            at_ms: r.at_ms,
            jws: r.jws,
        }
    }
}
