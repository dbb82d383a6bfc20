//! People: the test person most flows sign in as, registering a person, and mandates to act for an
//! organisation.

use yihao::app::App;
use yihao::domain::account::{AccountId, Evidence, Level, PersonName, ProofMethod};
use yihao::domain::document::Document;
use yihao::domain::identifiers::Phone;
use yihao::domain::organisation::{Membership, Organisation, Role, Scope};
use yihao::domain::password::Password;
use yihao::protocol::accounts::{AccountError, Identities, NewAccount};

/// The test person: resident ID number, name, password and mobile number.
pub const ID_NUMBER: &str = "11010519491231002X";
pub const NAME: &str = "张三";
pub const PASSWORD: &str = "Str0ng-pass!";
pub const PHONE: &str = "13812341234";

/// A person to register: one resident ID card, a name, real-name evidence, perhaps a mobile number.
pub struct Person<'a> {
    pub number: &'a str,
    pub name: &'a str,
    pub phone: Option<&'a str>,
    pub level: u8,
    pub method: ProofMethod,
    /// Who checked the evidence (free text).
    pub source: &'a str,
    /// When the document was recorded and when the evidence was checked.
    pub document_at: i64,
    pub verified_at: i64,
}

impl<'a> Person<'a> {
    /// Real-name level 2 from a register check, without a mobile number.
    pub fn new(number: &'a str, name: &'a str) -> Self {
        Self {
            number,
            name,
            phone: None,
            level: 2,
            method: ProofMethod::RegisterCheck,
            source: "test",
            document_at: 1_700_000_000,
            verified_at: 1,
        }
    }

    pub fn account(&self) -> NewAccount {
        NewAccount {
            documents: vec![Document::national(self.number, self.document_at).unwrap()],
            name: PersonName::parse(self.name).unwrap(),
            phone: self.phone.map(|p| Phone::parse(p).unwrap()),
            email: None,
            evidence: Evidence::new(
                Level::new(self.level).unwrap(),
                self.method,
                self.source,
                self.verified_at,
            )
            .unwrap(),
        }
    }

    /// Registers the person with an optional password; returns the account id.
    pub async fn create(&self, app: &App, password: Option<&str>) -> AccountId {
        let id = new_id();
        let password = password.map(Password::new);
        app.identities
            .create_account(id.clone(), self.account(), password.as_ref(), 1)
            .await
            .unwrap();
        id
    }
}

/// A fresh account id.
pub fn new_id() -> AccountId {
    AccountId::parse(&uuid::Uuid::new_v4().to_string()).unwrap()
}

/// Builds the membership of `account` in `org` and grants it.
#[allow(clippy::too_many_arguments)]
pub async fn grant(
    ids: &Identities,
    org: &Organisation,
    account: &AccountId,
    role: Role,
    scope: Scope,
    expires_at: Option<i64>,
    granted_by: Option<AccountId>,
    now: i64,
) -> Result<Membership, AccountError> {
    let m = Membership::grant(
        org.id.clone(),
        account.clone(),
        role,
        scope,
        expires_at,
        granted_by,
        now,
    )?;
    ids.grant(org, m, now).await
}

/// The codes the development SMS gateway of `app` has "sent" to `phone`, oldest first.
pub fn sms_codes(app: &App, phone: &str) -> Vec<String> {
    yihao::outside::sms::read_outbox(&app.config.sms.dev_outbox)
        .unwrap()
        .into_iter()
        .filter(|m| m.phone == phone)
        .map(|m| m.code)
        .collect()
}

/// The last code sent to `phone`.
pub fn last_sms_code(app: &App, phone: &str) -> String {
    sms_codes(app, phone)
        .pop()
        .unwrap_or_else(|| panic!("no SMS code was sent to {phone}"))
}
