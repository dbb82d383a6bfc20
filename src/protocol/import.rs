//! Importing legacy accounts from department systems (one JSON object per line).
//!
//! A person line carries an identity document, name, phone, the source system and its user id, and
//! the password hash in the source's format. The same person arriving from two systems is merged into
//! one account keyed by the document, and both legacy ids are recorded; a different name for the same
//! document is a conflict, reported and not merged. An enterprise line (credit code + password of the
//! old enterprise account) becomes an organisation whose administrator is the person named in it.
//! Importing the same file twice changes nothing the second time.
//!
//! ```json
//! {"source":"hall","user_id":"u1","id_number":"11010519491231002X","name":"张三","phone":"13812341234",
//!  "password":{"format":"bcrypt","hash":"$2b$10$..."}}
//! {"kind":"enterprise","source":"tax","user_id":"e7","credit_code":"91512081MA62K0260E","org_name":"某公司",
//!  "administrator":{"id_number":"440305200002290029","name":"李四"},
//!  "password":{"format":"md5","hash":"<hex>","salt":"x1","salt_position":"suffix"}}
//! ```
//! Password formats: `argon2id`, `bcrypt`, `pbkdf2_sha256` (Django's string), and `md5`, `sha1`,
//! `sha256`, `sm3` as hex of the salted password (`salt`, `salt_position` prefix or suffix).

use serde::Deserialize;

use super::accounts::{AccountError, Identities, NewAccount};
use crate::crypto::password::{LegacyDigest, SaltPosition, StoredHash};
use crate::domain::account::{AccountId, Email, Evidence, Level, PersonName, ProofMethod};
use crate::domain::document::{Document, DocumentKind};
use crate::domain::identifiers::{CreditCode, Phone};
use crate::domain::organisation::{Membership, OrgId, Role, Scope};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    #[serde(default)]
    kind: Option<String>,
    source: String,
    user_id: String,
    id_number: Option<String>,
    doc_type: Option<String>,
    country: Option<String>,
    name: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    credit_code: Option<String>,
    org_name: Option<String>,
    administrator: Option<PersonFields>,
    password: Option<PasswordFields>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonFields {
    id_number: Option<String>,
    doc_type: Option<String>,
    country: Option<String>,
    name: Option<String>,
    phone: Option<String>,
    email: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordFields {
    format: String,
    hash: String,
    salt: Option<String>,
    salt_position: Option<String>,
}

/// What became of one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Merged,
    Unchanged,
    Conflict(String),
    Rejected(String),
}

/// A validated person from a line.
struct Person {
    document: Document,
    name: PersonName,
    phone: Option<Phone>,
    email: Option<Email>,
}

fn rejected(why: impl Into<String>) -> Outcome {
    Outcome::Rejected(why.into())
}

/// Why a line is rejected: said in the report, next to the line number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
struct Rejection(String);

impl From<&str> for Rejection {
    fn from(why: &str) -> Self {
        Self(why.to_owned())
    }
}

impl From<String> for Rejection {
    fn from(why: String) -> Self {
        Self(why)
    }
}

fn person(fields: &PersonFields, now: i64) -> Result<Person, Rejection> {
    let number = fields.id_number.as_deref().ok_or("id_number is missing")?;
    let document = match fields.doc_type.as_deref() {
        Some(kind) => Document::parse(
            DocumentKind::parse(kind).map_err(|e| Rejection(e.0))?,
            fields.country.as_deref(),
            number,
            now,
        ),
        None => Document::national(number, now),
    }
    .map_err(|e| format!("id_number: {e}"))?;
    Ok(Person {
        document,
        name: PersonName::parse(fields.name.as_deref().ok_or("name is missing")?)
            .map_err(|e| format!("name: {e}"))?,
        phone: fields
            .phone
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(Phone::parse)
            .transpose()
            .map_err(|e| format!("phone: {e}"))?,
        email: fields
            .email
            .as_deref()
            .filter(|e| !e.is_empty())
            .map(Email::parse)
            .transpose()
            .map_err(|e| format!("email: {e}"))?,
    })
}

fn password(fields: &PasswordFields) -> Result<StoredHash, Rejection> {
    let parsed = match fields.format.as_str() {
        "argon2id" | "bcrypt" | "pbkdf2_sha256" => {
            StoredHash::parse(&fields.hash).filter(|h| h.scheme() == fields.format)
        }
        digest => {
            let digest = LegacyDigest::parse(digest).ok_or_else(|| {
                format!("password.format {digest:?} is not one of argon2id, bcrypt, pbkdf2_sha256, md5, sha1, sha256, sm3")
            })?;
            let salt = fields.salt.clone().unwrap_or_default();
            // The salt's position is the source's; without a salt it does not matter.
            let position = match (fields.salt_position.as_deref(), salt.is_empty()) {
                (Some("prefix"), _) => SaltPosition::Prefix,
                (Some("suffix"), _) | (None, true) => SaltPosition::Suffix,
                (None, false) => {
                    return Err(
                        "password.salt_position (prefix or suffix) is required with a salt".into(),
                    );
                }
                (Some(other), _) => {
                    return Err(Rejection(format!(
                        "password.salt_position {other:?} is not prefix or suffix"
                    )));
                }
            };
            StoredHash::salted(digest, position, salt.as_bytes(), &fields.hash)
        }
    };
    parsed.ok_or_else(|| {
        Rejection(format!(
            "password.hash is not a valid {} hash",
            fields.format
        ))
    })
}

/// A legacy id already mapped to another account is the line's conflict; other errors stop the import.
fn legacy_id_taken(e: AccountError) -> Result<(Outcome, Option<AccountId>), AccountError> {
    match e {
        AccountError::Taken(_) => Ok((
            Outcome::Conflict("this source's user id is already mapped to another account".into()),
            None,
        )),
        e => Err(e),
    }
}

impl Identities {
    /// Imports one line. Never fails as a whole: every problem becomes the line's outcome, except a
    /// store that stops answering.
    pub async fn import_line(&self, line: &str, now: i64) -> Result<Outcome, AccountError> {
        let parsed: Line = match serde_json::from_str(line) {
            Ok(l) => l,
            Err(e) => {
                return Ok(rejected(format!(
                    "not a JSON object of the import format: {e}"
                )));
            }
        };
        let source = parsed.source.trim();
        let user_id = parsed.user_id.trim();
        if source.is_empty() || source.len() > 64 || user_id.is_empty() || user_id.len() > 256 {
            return Ok(rejected(
                "source (1-64 characters) and user_id (1-256) are required",
            ));
        }
        let hash = match parsed.password.as_ref().map(password).transpose() {
            Ok(h) => h,
            Err(why) => return Ok(rejected(why.0)),
        };
        match parsed.kind.as_deref().unwrap_or("person") {
            "person" => {
                let fields = PersonFields {
                    id_number: parsed.id_number,
                    doc_type: parsed.doc_type,
                    country: parsed.country,
                    name: parsed.name,
                    phone: parsed.phone,
                    email: parsed.email,
                };
                let person = match person(&fields, now) {
                    Ok(p) => p,
                    Err(why) => return Ok(rejected(why.0)),
                };
                self.import_person(source, user_id, person, hash.as_ref(), now)
                    .await
                    .map(|(o, _)| o)
            }
            "enterprise" => {
                let code = match parsed.credit_code.as_deref().map(CreditCode::parse) {
                    Some(Ok(c)) => c,
                    Some(Err(e)) => return Ok(rejected(format!("credit_code: {e}"))),
                    None => return Ok(rejected("credit_code is missing")),
                };
                let Some(org_name) = parsed.org_name.as_deref() else {
                    return Ok(rejected("org_name is missing"));
                };
                let Some(admin) = &parsed.administrator else {
                    return Ok(rejected(
                        "an enterprise account needs its administrator (a person)",
                    ));
                };
                let admin = match person(admin, now) {
                    Ok(p) => p,
                    Err(why) => return Ok(rejected(format!("administrator: {why}"))),
                };
                self.import_enterprise(source, user_id, code, org_name, admin, hash.as_ref(), now)
                    .await
            }
            other => Ok(rejected(format!(
                "kind {other:?} is not person or enterprise"
            ))),
        }
    }

    async fn import_person(
        &self,
        source: &str,
        user_id: &str,
        person: Person,
        hash: Option<&StoredHash>,
        now: i64,
    ) -> Result<(Outcome, Option<AccountId>), AccountError> {
        // A salted MD5, SHA-1, SHA-256 or SM3 digest is stored only wrapped in argon2id: the weak
        // digest never reaches the database, and checking it costs what any password costs, so an
        // imported account that was never used cannot be told apart by timing (security review 18).
        let wrapped = match hash {
            Some(h) => Some(self.hasher.wrap(h).await?),
            None => None,
        };
        let hash = wrapped.as_ref();
        // Two attempts: a concurrent line may create the same person between look-up and insert.
        for _ in 0..2 {
            if let Some(existing) = self.find_by_document(&person.document).await? {
                if existing.name != person.name {
                    return Ok((
                        Outcome::Conflict(format!(
                            "the document is registered under another name ({}), not merged",
                            existing.name.masked()
                        )),
                        None,
                    ));
                }
                let added = match self.add_legacy_id(&existing.id, source, user_id).await {
                    Ok(added) => added,
                    Err(e) => return legacy_id_taken(e),
                };
                let mut changed = added;
                if let Some(hash) = hash
                    && self
                        .accounts
                        .password_hash(existing.id.as_str())
                        .await?
                        .is_none()
                {
                    self.accounts
                        .set_password(existing.id.as_str(), &hash.encode(), now, 0)
                        .await?;
                    changed = true;
                }
                let outcome = if changed {
                    Outcome::Merged
                } else {
                    Outcome::Unchanged
                };
                return Ok((outcome, Some(existing.id)));
            }
            let evidence = Evidence::new(Level::new(1)?, ProofMethod::LegacyImport, source, now)?;
            let new = NewAccount {
                documents: vec![person.document.clone()],
                name: person.name.clone(),
                phone: person.phone.clone(),
                email: person.email.clone(),
                evidence,
            };
            let id = AccountId::parse(&uuid::Uuid::new_v4().to_string())?;
            let encoded = hash.map(StoredHash::encode);
            match self
                .create_imported(id.clone(), new, encoded.as_deref(), (source, user_id), now)
                .await
            {
                Ok(_) => return Ok((Outcome::Created, Some(id))),
                Err(AccountError::Taken(what)) if what == "document" => continue,
                Err(AccountError::Taken(what)) if what == "legacy id" => {
                    return legacy_id_taken(AccountError::Taken(what));
                }
                Err(AccountError::Taken(what)) => {
                    return Ok((
                        Outcome::Conflict(format!("the {what} is registered to another account")),
                        None,
                    ));
                }
                Err(e) => return Err(e),
            }
        }
        Ok((
            Outcome::Conflict(
                "the document was registered concurrently; import the line again".into(),
            ),
            None,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    async fn import_enterprise(
        &self,
        source: &str,
        user_id: &str,
        code: CreditCode,
        org_name: &str,
        admin: Person,
        hash: Option<&StoredHash>,
        now: i64,
    ) -> Result<Outcome, AccountError> {
        let org = match self.orgs.org_by_code(&code).await? {
            Some(org) if org.name != org_name.trim() => {
                return Ok(Outcome::Conflict(format!(
                    "credit code registered under another name ({})",
                    org.name
                )));
            }
            Some(org) => org,
            None => {
                let id = OrgId::parse(&uuid::Uuid::new_v4().to_string())?;
                match self.create_org(id, code.clone(), org_name, now).await {
                    Ok(org) => org,
                    Err(AccountError::Taken(_)) => self
                        .orgs
                        .org_by_code(&code)
                        .await?
                        .ok_or_else(|| AccountError::NotFound(code.to_string()))?,
                    Err(AccountError::Invalid(e)) => return Ok(rejected(format!("org_name: {e}"))),
                    Err(e) => return Err(e),
                }
            }
        };
        // The enterprise's legacy id and password go to the administrator who now acts for it.
        let (outcome, admin_id) = self
            .import_person(source, user_id, admin, hash, now)
            .await?;
        let Some(admin_id) = admin_id else {
            return Ok(outcome);
        };
        let holds = self
            .orgs
            .members(&org.id)
            .await?
            .iter()
            .any(|m| m.account_id == admin_id && m.role == Role::Administrator);
        if !holds {
            let m = Membership::grant(
                org.id.clone(),
                admin_id.clone(),
                Role::Administrator,
                Scope::All,
                None,
                None,
                now,
            )?;
            self.grant(&org, m, now).await?;
        }
        Ok(match outcome {
            Outcome::Unchanged if !holds => Outcome::Merged,
            o => o,
        })
    }
}

/// The key that orders lines about the same subject: the normalised document (so an 18-digit number
/// and its legacy 15-digit form share it), or the credit code, or the line itself.
pub fn ordering_key(line: &str, now: i64) -> String {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
        return line.to_owned();
    };
    let number = value["id_number"]
        .as_str()
        .or_else(|| value["administrator"]["id_number"].as_str());
    if let Some(code) = value["credit_code"].as_str() {
        return format!("org:{}", code.trim().to_ascii_uppercase());
    }
    match number.map(|n| Document::national(n, now)) {
        Some(Ok(doc)) => doc.index_input(),
        Some(Err(_)) | None => line.to_owned(),
    }
}

/// Splits numbered lines into `count` lanes so that lines about the same subject share a lane, in
/// file order: lanes can run concurrently and the outcome is the same as reading the file in order
/// (the first line about a person creates the account, later ones merge or conflict).
pub fn lanes(lines: Vec<(u64, String)>, count: usize, now: i64) -> Vec<Vec<(u64, String)>> {
    use std::hash::{Hash, Hasher};
    let count = count.max(1);
    let mut out: Vec<Vec<(u64, String)>> = (0..count).map(|_| Vec::new()).collect();
    for (n, line) in lines {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        ordering_key(&line, now).hash(&mut h);
        let lane = (h.finish() % count as u64) as usize;
        out[lane].push((n, line));
    }
    out
}
