//! Sealing account records for the store and opening them again: personal numbers are sealed with
//! the PII key and blind-indexed for look-ups (docs/privacy.md); legacy ids likewise.

use super::*;

impl Identities {
    /// Seals an account for storage.
    pub fn seal(&self, account: &Account) -> (AccountRecord, Vec<DocumentRecord>) {
        let id = account.id.as_str();
        let version = i64::from(self.pii.active_version());
        let record = AccountRecord {
            id: id.to_owned(),
            name: account.name.as_str().to_owned(),
            phone_index: account
                .phone
                .as_ref()
                .map(|p| self.phone_index(p).0.to_vec()),
            phone_sealed: account
                .phone
                .as_ref()
                .map(|p| self.pii.seal(&phone_context(id), p.as_str())),
            email: account.email.as_ref().map(|e| e.as_str().to_owned()),
            level: i64::from(account.evidence.level().get()),
            proof_method: account.evidence.method().as_str().to_owned(),
            proof_source: account.evidence.source().to_owned(),
            proof_at: account.evidence.verified_at(),
            status: account.status.as_str().to_owned(),
            pii_version: version,
            created_at: account.created_at,
            updated_at: account.updated_at,
        };
        let documents = account
            .documents
            .iter()
            .map(|d| self.seal_document(id, d, account.created_at))
            .collect();
        (record, documents)
    }

    pub(super) fn seal_document(&self, account_id: &str, d: &Document, now: i64) -> DocumentRecord {
        let index = self.document_index(d);
        let context = document_context(&index);
        DocumentRecord {
            number_index: index.0.to_vec(),
            account_id: account_id.to_owned(),
            kind: d.kind().as_str().to_owned(),
            country: d.country().to_owned(),
            number_sealed: self.pii.seal(&context, d.number()),
            alias_index: d
                .legacy_alias()
                .map(|a| self.pii.blind_index(DOCUMENT_ALIAS, a).0.to_vec()),
            alias_sealed: d
                .legacy_alias()
                .map(|a| self.pii.seal(&format!("{context}:alias"), a)),
            pii_version: i64::from(self.pii.active_version()),
            created_at: now,
        }
    }

    /// Opens a stored account.
    pub fn open(
        &self,
        record: AccountRecord,
        documents: Vec<DocumentRecord>,
    ) -> Result<Account, StoreError> {
        let id = record.id.clone();
        let corrupt = |what: String| StoreError::Corrupt(format!("account {id}: {what}"));
        let phone = match &record.phone_sealed {
            Some(sealed) => {
                let plain = self
                    .pii
                    .open(&phone_context(&record.id), sealed)
                    .map_err(|e| corrupt(e.to_string()))?;
                Some(Phone::parse(&plain).map_err(|e| corrupt(e.0))?)
            }
            None => None,
        };
        let mut docs = Vec::with_capacity(documents.len());
        for d in documents {
            let index: [u8; 32] = d
                .number_index
                .as_slice()
                .try_into()
                .map_err(|_| corrupt("index length".into()))?;
            let context = document_context(&BlindIndex(index));
            let number = self
                .pii
                .open(&context, &d.number_sealed)
                .map_err(|e| corrupt(e.to_string()))?;
            let kind = DocumentKind::parse(&d.kind).map_err(|e| corrupt(e.0))?;
            // Documents were valid when stored; a birth date cannot move into the future.
            let parsed = Document::parse(
                kind,
                Some(&d.country)
                    .filter(|c| !c.is_empty())
                    .map(String::as_str),
                &number,
                FAR_FUTURE,
            )
            .map_err(|e| corrupt(e.0))?;
            let parsed = match &d.alias_sealed {
                Some(sealed) => {
                    let alias = self
                        .pii
                        .open(&format!("{context}:alias"), sealed)
                        .map_err(|e| corrupt(e.to_string()))?;
                    Document::national(&alias, FAR_FUTURE).map_err(|e| corrupt(e.0))?
                }
                None => parsed,
            };
            docs.push(parsed);
        }
        let level = u8::try_from(record.level)
            .ok()
            .and_then(|l| Level::new(l).ok())
            .ok_or_else(|| corrupt("level".into()))?;
        let method = ProofMethod::parse(&record.proof_method).map_err(|e| corrupt(e.0))?;
        Ok(Account {
            id: AccountId::parse(&record.id).map_err(|e| corrupt(e.0))?,
            name: PersonName::parse(&record.name).map_err(|e| corrupt(e.0))?,
            documents: docs,
            phone,
            email: record
                .email
                .as_deref()
                .map(Email::parse)
                .transpose()
                .map_err(|e| corrupt(e.0))?,
            evidence: Evidence::new(level, method, &record.proof_source, record.proof_at)
                .map_err(|e| corrupt(e.0))?,
            status: AccountStatus::parse(&record.status).map_err(|e| corrupt(e.0))?,
            created_at: record.created_at,
            updated_at: record.updated_at,
        })
    }

    pub(super) fn legacy_record(
        &self,
        id: &AccountId,
        source: &str,
        user_id: &str,
    ) -> LegacyIdRecord {
        let index = self.legacy_index(source, user_id);
        LegacyIdRecord {
            source: source.to_owned(),
            user_index: index.0.to_vec(),
            user_sealed: self.pii.seal(&legacy_context(source, &index), user_id),
            account_id: id.as_str().to_owned(),
            pii_version: i64::from(self.pii.active_version()),
        }
    }

    pub(super) fn legacy_index(&self, source: &str, user_id: &str) -> BlindIndex {
        self.pii
            .blind_index(LEGACY_USER, &format!("{source}\u{0}{user_id}"))
    }

    /// The account that was `user_id` in `source`.
    pub async fn by_legacy_id(
        &self,
        source: &str,
        user_id: &str,
    ) -> Result<Option<AccountId>, AccountError> {
        let found = self
            .accounts
            .account_id_by_legacy_id(source, &self.legacy_index(source, user_id).0)
            .await?;
        found
            .map(|id| AccountId::parse(&id).map_err(|e| StoreError::Corrupt(e.0).into()))
            .transpose()
    }

    /// The `(source, user id)` pairs an account had in department systems.
    pub async fn legacy_ids(&self, id: &AccountId) -> Result<Vec<(String, String)>, AccountError> {
        let mut out = Vec::new();
        for r in self.accounts.legacy_ids(id.as_str()).await? {
            let index: [u8; 32] = r
                .user_index
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::Corrupt("legacy index".into()))?;
            let user = self
                .pii
                .open(
                    &legacy_context(&r.source, &BlindIndex(index)),
                    &r.user_sealed,
                )
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            out.push((r.source, user));
        }
        Ok(out)
    }
}
