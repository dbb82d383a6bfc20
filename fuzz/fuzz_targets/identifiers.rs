//! Every identifier parser on arbitrary text: resident ID numbers (18 and 15 digits), credit codes,
//! phones, every document kind, client ids, redirect URIs and scopes. None may panic; what one accepts,
//! its normal form parses again to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use yihao::domain::client::{ClientId, RedirectUri, Scope};
use yihao::domain::document::{Document, DocumentKind};
use yihao::domain::identifiers::{CreditCode, Phone, ResidentId};

/// 2026-11-28T00:00:00+08:00: a fixed clock, so a crash reproduces.
const NOW: i64 = 1_795_795_200;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = ResidentId::parse(text, NOW) {
        let again = ResidentId::parse(id.as_str(), NOW).expect("a normal form parses");
        assert_eq!(again.as_str(), id.as_str());
    }
    if let Ok(code) = CreditCode::parse(text) {
        assert_eq!(CreditCode::parse(code.as_str()).as_ref(), Ok(&code));
    }
    if let Ok(phone) = Phone::parse(text) {
        assert_eq!(Phone::parse(phone.as_str()).as_ref(), Ok(&phone));
    }
    let _ = Document::national(text, NOW);
    // "KIND|COUNTRY|NUMBER" reaches every kind with a chosen country.
    let mut parts = text.splitn(3, '|');
    if let (Some(kind), Some(country), Some(number)) = (parts.next(), parts.next(), parts.next())
        && let Ok(kind) = DocumentKind::parse(kind)
    {
        let _ = Document::parse(kind, Some(country), number, NOW);
        let _ = Document::parse(kind, None, number, NOW);
    }
    let _ = ClientId::parse(text);
    let _ = RedirectUri::parse(text);
    let _ = RedirectUri::parse_post_logout(text);
    let _ = Scope::parse(text);
});
