//! Re-sealing personal data under the active PII key version, in batches beside live traffic.

use super::*;

impl Identities {
    /// Re-seals up to `batch` rows of each table that are not under the active key version;
    /// returns how many were re-sealed (0 when done). Rows changed meanwhile are left for the next
    /// batch, so it runs beside live traffic.
    pub async fn reseal_batch(&self, batch: i64) -> Result<u64, AccountError> {
        let version = i64::from(self.pii.active_version());
        let mut done = 0;
        for a in self
            .accounts
            .accounts_sealed_otherwise(version, batch)
            .await?
        {
            let Some(sealed) = &a.phone_sealed else {
                continue;
            };
            let context = phone_context(&a.id);
            let plain = self
                .pii
                .open(&context, sealed)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if self
                .accounts
                .reseal_phone(&a.id, sealed, &self.pii.seal(&context, &plain), version)
                .await?
            {
                done += 1;
            }
        }
        for d in self
            .accounts
            .documents_sealed_otherwise(version, batch)
            .await?
        {
            let index: [u8; 32] = d
                .number_index
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::Corrupt("document index".into()))?;
            let context = document_context(&BlindIndex(index));
            let number = self
                .pii
                .open(&context, &d.number_sealed)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let alias = match &d.alias_sealed {
                Some(s) => Some(
                    self.pii
                        .open(&format!("{context}:alias"), s)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                ),
                None => None,
            };
            let number_sealed = self.pii.seal(&context, &number);
            let alias_sealed = alias.map(|a| self.pii.seal(&format!("{context}:alias"), &a));
            if self
                .accounts
                .reseal_document(
                    &d.number_index,
                    &number_sealed,
                    alias_sealed.as_deref(),
                    version,
                )
                .await?
            {
                done += 1;
            }
        }
        for r in self
            .accounts
            .legacy_ids_sealed_otherwise(version, batch)
            .await?
        {
            let index: [u8; 32] = r
                .user_index
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::Corrupt("legacy index".into()))?;
            let context = legacy_context(&r.source, &BlindIndex(index));
            let user = self
                .pii
                .open(&context, &r.user_sealed)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if self
                .accounts
                .reseal_legacy_id(
                    &r.source,
                    &r.user_index,
                    &self.pii.seal(&context, &user),
                    version,
                )
                .await?
            {
                done += 1;
            }
        }
        Ok(done)
    }
}
