//! What the SQL adapters share: the portable statements, the row types and their conversion to
//! domain values, the error mapping, and [`sql_store!`], which writes the one implementation of
//! [`Store`](super::Store) for each engine's pool type. The SQL is portable (`$N` placeholders, which
//! sqlx-sqlite binds by position; TEXT ids; BIGINT epoch seconds), so it is written once.

use crate::domain::client::{
    AuthMethod, Channel, Client, ClientId, ClientSecrets, ClientSettings, ClientSpec, GrantType,
    RedirectUri, Scope, SealedSecret, SecretHash,
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
     frontchannel_logout_session_required, secret_sealed, previous_secret_sealed, channel) VALUES ($1, $2, \
     $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, \
     $24, $25, $26, $27, $28)";
pub(crate) const UPDATE_CLIENT: &str = "UPDATE clients SET name = $2, auth_method = $3, \
     redirect_uris = $4, post_logout_redirect_uris = $5, grant_types = $6, scopes = $7, \
     first_party = $8, secret_hash = $9, previous_secret_hash = $10, \
     previous_secret_expires_at = $11, created_at = $12, updated_at = $13, \
     id_token_signed_response_alg = $14, access_token_secs = $15, id_token_secs = $16, full_phone = $17, \
     access_token_signed_response_alg = $18, resources = $19, jwks = $20, jwks_uri = $21, \
     backchannel_logout_uri = $22, backchannel_logout_session_required = $23, frontchannel_logout_uri = $24, \
     frontchannel_logout_session_required = $25, secret_sealed = $26, previous_secret_sealed = $27, \
     channel = $28 WHERE id = $1";
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
        }
    }

    pub fn into_client(self) -> Result<Client, StoreError> {
        let id = self.id.clone();
        let corrupt = move |what: &str| StoreError::Corrupt(format!("client {id}: {what}"));
        fn list<T>(
            raw: &str,
            parse: impl Fn(&str) -> Result<T, crate::domain::client::ClientError>,
        ) -> Result<Vec<T>, String> {
            let items: Vec<String> = serde_json::from_str(raw).map_err(|e| e.to_string())?;
            items
                .iter()
                .map(|s| parse(s).map_err(|e| e.to_string()))
                .collect()
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
            },
        };
        Client::restore(spec, secrets, self.created_at, self.updated_at)
            .map_err(|e| corrupt(&e.to_string()))
    }
}

/// Names an adapter's engine, so code written once can spell its query types.
pub(crate) trait Engine {
    type Db: sqlx::Database;
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

/// Implements [`Store`](super::Store) for an adapter struct with `pool` (reads) and `writer`
/// (writes) fields of type `sqlx::Pool<$db>` and a `MIGRATOR` static. SQLite admits one writer at a
/// time: its adapter gives `writer` a single connection, so writers queue in the pool instead of
/// sleeping on SQLITE_BUSY; PostgreSQL uses one pool for both. The bodies are the same for every engine; only the pool type differs.
macro_rules! sql_store {
    ($adapter:ty, $db:ty, $backend:literal) => {
        impl $crate::store::sql::Engine for $adapter {
            type Db = $db;
        }

        #[async_trait::async_trait]
        impl $crate::store::Store for $adapter {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn ping(&self) -> $crate::store::StoreResult<()> {
                sqlx::query("SELECT 1")
                    .execute(&self.pool)
                    .await
                    .map_err(|e| $crate::store::sql::db_error(|| "ping".into(), e))?;
                Ok(())
            }

            async fn migrate(&self) -> $crate::store::StoreResult<()> {
                MIGRATOR
                    .run(&self.pool)
                    .await
                    .map_err($crate::store::sql::migrate_error)
            }

            async fn close(&self) {
                self.writer.close().await;
                self.pool.close().await;
            }
        }

        $crate::store::sql_accounts::sql_account_store!($adapter);
        $crate::store::sql_orgs::sql_org_store!($adapter);
        $crate::store::sql_sessions::sql_session_store!($adapter);
        $crate::store::sql_audit::sql_audit_store!($adapter);

        #[async_trait::async_trait]
        impl $crate::store::OutboxStore for $adapter {
            async fn enqueue_logout(&self, r: &$crate::store::OutboxRecord) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO logout_outbox (id, client_id, uri, sub, sid, status, attempts, next_attempt_at, \
                     claimed_until, last_error, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .bind(&r.id)
                .bind(&r.client_id)
                .bind(&r.uri)
                .bind(&r.sub)
                .bind(&r.sid)
                .bind(&r.status)
                .bind(r.attempts)
                .bind(r.next_attempt_at)
                .bind(r.claimed_until)
                .bind(&r.last_error)
                .bind(r.created_at)
                .bind(r.updated_at)
                .execute(&self.writer)
                .await
                .map_err(|e| $crate::store::sql::db_error(|| "logout delivery".into(), e))?;
                Ok(())
            }

            async fn claim_logouts(&self, now: i64, lease_secs: i64, limit: i64) -> $crate::store::StoreResult<Vec<$crate::store::OutboxRecord>> {
                // The outer conditions are re-checked on each row when another node updated it first
                // (PostgreSQL re-evaluates them on the new row version), so a row is claimed once.
                sqlx::query_as(
                    "UPDATE logout_outbox SET claimed_until = $2 WHERE id IN (SELECT id FROM logout_outbox \
                     WHERE status = 'pending' AND next_attempt_at <= $1 AND (claimed_until IS NULL OR claimed_until < $1) \
                     ORDER BY next_attempt_at LIMIT $3) AND status = 'pending' AND (claimed_until IS NULL OR claimed_until < $1) \
                     RETURNING *",
                )
                .bind(now)
                .bind(now + lease_secs)
                .bind(limit)
                .fetch_all(&self.writer)
                .await
                .map_err(|e| $crate::store::sql::db_error(|| "logout outbox".into(), e))
            }

            async fn settle_logout(&self, r: &$crate::store::OutboxRecord) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "UPDATE logout_outbox SET status = $2, attempts = $3, next_attempt_at = $4, claimed_until = NULL, \
                     last_error = $5, updated_at = $6 WHERE id = $1",
                )
                .bind(&r.id)
                .bind(&r.status)
                .bind(r.attempts)
                .bind(r.next_attempt_at)
                .bind(&r.last_error)
                .bind(r.updated_at)
                .execute(&self.writer)
                .await
                .map_err(|e| $crate::store::sql::db_error(|| "logout delivery".into(), e))?;
                Ok(())
            }

            async fn logout_deliveries(&self, client_id: &str) -> $crate::store::StoreResult<Vec<$crate::store::OutboxRecord>> {
                sqlx::query_as("SELECT * FROM logout_outbox WHERE client_id = $1 ORDER BY created_at DESC, id")
                    .bind(client_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| $crate::store::sql::db_error(|| "logout outbox".into(), e))
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::RefreshStore for $adapter {
            async fn insert_refresh(&self, r: &$crate::store::RefreshRecord) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO refresh_tokens (token_hash, family_id, client_id, account_id, grant_json, issued_at, \
                     expires_at, family_expires_at, used_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&r.token_hash)
                .bind(&r.family_id)
                .bind(&r.client_id)
                .bind(&r.account_id)
                .bind(&r.grant_json)
                .bind(r.issued_at)
                .bind(r.expires_at)
                .bind(r.family_expires_at)
                .bind(r.used_at)
                .bind(r.revoked_at)
                .execute(&self.writer)
                .await
                .map_err(|e| $crate::store::sql::db_error(|| "refresh token".into(), e))?;
                Ok(())
            }

            async fn rotate_refresh(&self, token_hash: &[u8], now: i64) -> $crate::store::StoreResult<$crate::store::Rotation> {
                let err = |e| $crate::store::sql::db_error(|| "refresh token".into(), e);
                let rotated: Option<$crate::store::RefreshRecord> = sqlx::query_as(
                    "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL \
                     AND revoked_at IS NULL AND expires_at > $2 AND family_expires_at > $2 RETURNING *",
                )
                .bind(token_hash)
                .bind(now)
                .fetch_optional(&self.writer)
                .await
                .map_err(err)?;
                if let Some(r) = rotated {
                    return Ok($crate::store::Rotation::Rotated(r));
                }
                let existing: Option<$crate::store::RefreshRecord> = sqlx::query_as("SELECT * FROM refresh_tokens WHERE token_hash = $1")
                    .bind(token_hash)
                    .fetch_optional(&self.writer)
                    .await
                    .map_err(err)?;
                match existing {
                    Some(r) if r.used_at.is_some() => {
                        sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL")
                            .bind(&r.family_id)
                            .bind(now)
                            .execute(&self.writer)
                            .await
                            .map_err(err)?;
                        Ok($crate::store::Rotation::Reused(r))
                    }
                    _ => Ok($crate::store::Rotation::Invalid),
                }
            }

            async fn refresh(&self, token_hash: &[u8]) -> $crate::store::StoreResult<Option<$crate::store::RefreshRecord>> {
                sqlx::query_as("SELECT * FROM refresh_tokens WHERE token_hash = $1")
                    .bind(token_hash)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| $crate::store::sql::db_error(|| "refresh token".into(), e))
            }

            async fn revoke_family(&self, family_id: &str, now: i64) -> $crate::store::StoreResult<u64> {
                let done = sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL")
                    .bind(family_id)
                    .bind(now)
                    .execute(&self.writer)
                    .await
                    .map_err(|e| $crate::store::sql::db_error(|| "refresh token".into(), e))?;
                Ok(done.rows_affected())
            }

            async fn revoke_account_refresh(&self, account_id: &str, now: i64) -> $crate::store::StoreResult<u64> {
                let done = sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE account_id = $1 AND revoked_at IS NULL")
                    .bind(account_id)
                    .bind(now)
                    .execute(&self.writer)
                    .await
                    .map_err(|e| $crate::store::sql::db_error(|| "refresh token".into(), e))?;
                Ok(done.rows_affected())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::ConsentStore for $adapter {
            async fn consented_scopes(&self, account_id: &str, client_id: &str) -> $crate::store::StoreResult<Vec<String>> {
                let scopes: Option<String> = sqlx::query_scalar("SELECT scopes FROM consents WHERE account_id = $1 AND client_id = $2")
                    .bind(account_id)
                    .bind(client_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| $crate::store::sql::db_error(|| "consent".into(), e))?;
                match scopes {
                    None => Ok(Vec::new()),
                    Some(json) => serde_json::from_str(&json)
                        .map_err(|e| $crate::store::StoreError::Corrupt(format!("consent {account_id}/{client_id}: {e}"))),
                }
            }

            async fn save_consent(&self, account_id: &str, client_id: &str, scopes: &[String], now: i64) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO consents (account_id, client_id, scopes, granted_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (account_id, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at",
                )
                .bind(account_id)
                .bind(client_id)
                .bind(serde_json::to_string(scopes).unwrap_or_default())
                .bind(now)
                .execute(&self.writer)
                .await
                .map_err(|e| $crate::store::sql::db_error(|| "consent".into(), e))?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::KeyStore for $adapter {
            async fn insert_signing_key(&self, k: &$crate::store::SigningKeyRecord) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO signing_keys (kid, alg, private_sealed, created_at, not_before, retired_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&k.kid)
                .bind(&k.alg)
                .bind(&k.private_sealed)
                .bind(k.created_at)
                .bind(k.not_before)
                .bind(k.retired_at)
                .execute(&self.writer)
                .await
                .map_err(|e| $crate::store::sql::db_error(|| format!("signing key {}", k.kid), e))?;
                Ok(())
            }

            async fn signing_keys(&self) -> $crate::store::StoreResult<Vec<$crate::store::SigningKeyRecord>> {
                sqlx::query_as("SELECT * FROM signing_keys ORDER BY created_at, kid")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| $crate::store::sql::db_error(|| "signing keys".into(), e))
            }

            async fn retire_signing_key(&self, kid: &str, at: i64) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE signing_keys SET retired_at = CASE WHEN retired_at IS NULL OR retired_at > $2 \
                     THEN $2 ELSE retired_at END WHERE kid = $1",
                )
                .bind(kid)
                .bind(at)
                .execute(&self.writer)
                .await
                .map_err(|e| $crate::store::sql::db_error(|| format!("signing key {kid}"), e))?;
                Ok(done.rows_affected() > 0)
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::ClientStore for $adapter {
            async fn insert_client(
                &self,
                client: &$crate::domain::client::Client,
            ) -> $crate::store::StoreResult<()> {
                bind_client(sqlx::query($crate::store::sql::INSERT_CLIENT), client)
                    .execute(&self.writer)
                    .await
                    .map_err(|e| {
                        $crate::store::sql::db_error(|| format!("client {}", client.id()), e)
                    })?;
                Ok(())
            }

            async fn update_client(
                &self,
                client: &$crate::domain::client::Client,
            ) -> $crate::store::StoreResult<()> {
                let done = bind_client(sqlx::query($crate::store::sql::UPDATE_CLIENT), client)
                    .execute(&self.writer)
                    .await
                    .map_err(|e| {
                        $crate::store::sql::db_error(|| format!("client {}", client.id()), e)
                    })?;
                if done.rows_affected() == 0 {
                    return Err($crate::store::StoreError::NotFound(format!(
                        "client {}",
                        client.id()
                    )));
                }
                Ok(())
            }

            async fn client(
                &self,
                id: &$crate::domain::client::ClientId,
            ) -> $crate::store::StoreResult<Option<$crate::domain::client::Client>> {
                let row: Option<$crate::store::sql::ClientRow> =
                    sqlx::query_as($crate::store::sql::SELECT_CLIENT)
                        .bind(id.as_str())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(|e| $crate::store::sql::db_error(|| format!("client {id}"), e))?;
                row.map($crate::store::sql::ClientRow::into_client)
                    .transpose()
            }

            async fn clients(
                &self,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::client::Client>> {
                let rows: Vec<$crate::store::sql::ClientRow> =
                    sqlx::query_as($crate::store::sql::SELECT_CLIENTS)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(|e| $crate::store::sql::db_error(|| "clients".into(), e))?;
                rows.into_iter()
                    .map($crate::store::sql::ClientRow::into_client)
                    .collect()
            }

            async fn delete_client(
                &self,
                id: &$crate::domain::client::ClientId,
            ) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query($crate::store::sql::DELETE_CLIENT)
                    .bind(id.as_str())
                    .execute(&self.writer)
                    .await
                    .map_err(|e| $crate::store::sql::db_error(|| format!("client {id}"), e))?;
                Ok(done.rows_affected() > 0)
            }
        }

        /// Binds a client's columns in the order of `INSERT_CLIENT` / `UPDATE_CLIENT` ($1..$28).
        fn bind_client<'q>(
            query: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments>,
            client: &$crate::domain::client::Client,
        ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments> {
            let r = $crate::store::sql::ClientRow::from_client(client);
            query
                .bind(r.id)
                .bind(r.name)
                .bind(r.auth_method)
                .bind(r.redirect_uris)
                .bind(r.post_logout_redirect_uris)
                .bind(r.grant_types)
                .bind(r.scopes)
                .bind(r.first_party)
                .bind(r.secret_hash)
                .bind(r.previous_secret_hash)
                .bind(r.previous_secret_expires_at)
                .bind(r.created_at)
                .bind(r.updated_at)
                .bind(r.id_token_signed_response_alg)
                .bind(r.access_token_secs)
                .bind(r.id_token_secs)
                .bind(r.full_phone)
                .bind(r.access_token_signed_response_alg)
                .bind(r.resources)
                .bind(r.jwks)
                .bind(r.jwks_uri)
                .bind(r.backchannel_logout_uri)
                .bind(r.backchannel_logout_session_required)
                .bind(r.frontchannel_logout_uri)
                .bind(r.frontchannel_logout_session_required)
                .bind(r.secret_sealed)
                .bind(r.previous_secret_sealed)
                .bind(r.channel)
        }
    };
}
pub(crate) use sql_store;
