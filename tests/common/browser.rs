//! The person's browser: an HTTP client that keeps cookies and does not follow redirects, and what
//! it reads from pages (hidden form fields) and from redirects (the parameters).

use std::collections::HashMap;

use super::people::{ID_NUMBER, PASSWORD};

pub struct Browser {
    pub http: reqwest::Client,
}

impl Browser {
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self { http }
    }

    pub async fn get(&self, url: &str) -> reqwest::Response {
        self.http.get(url).send().await.unwrap()
    }

    /// The text of the page at `url`.
    pub async fn page(&self, url: &str) -> String {
        self.get(url).await.text().await.unwrap()
    }

    pub async fn post(&self, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http.post(url).form(form).send().await.unwrap()
    }

    /// Submits the login form of `page`.
    pub async fn login(
        &self,
        base: &str,
        page: &str,
        identifier: &str,
        password: &str,
    ) -> reqwest::Response {
        let (i, c) = (hidden(page, "interaction"), hidden(page, "csrf"));
        self.post(
            &format!("{base}/login"),
            &[
                ("interaction", &i),
                ("csrf", &c),
                ("identifier", identifier),
                ("password", password),
            ],
        )
        .await
    }

    /// Submits the login form of `page` and returns the text of the page it leads to.
    pub async fn login_page(
        &self,
        base: &str,
        page: &str,
        identifier: &str,
        password: &str,
    ) -> String {
        self.login(base, page, identifier, password)
            .await
            .text()
            .await
            .unwrap()
    }

    /// Opens the SMS tab of the login page `page`, asks for a code to `phone`; the page shown.
    pub async fn sms_send(&self, base: &str, page: &str, phone: &str) -> reqwest::Response {
        let (i, c) = (hidden(page, "interaction"), hidden(page, "csrf"));
        let tab = self.get(&format!("{base}/login/sms?interaction={i}")).await;
        assert_eq!(tab.status(), 200);
        let tab = tab.text().await.unwrap();
        assert!(tab.contains("action=\"/login/sms/send\""), "{tab}");
        self.post(
            &format!("{base}/login/sms/send"),
            &[("interaction", &i), ("csrf", &c), ("phone", phone)],
        )
        .await
    }

    /// Signs in on the SMS tab `page` with `phone` and `code`.
    pub async fn sms_login(
        &self,
        base: &str,
        page: &str,
        phone: &str,
        code: &str,
    ) -> reqwest::Response {
        let (i, c) = (hidden(page, "interaction"), hidden(page, "csrf"));
        self.post(
            &format!("{base}/login/sms"),
            &[
                ("interaction", &i),
                ("csrf", &c),
                ("phone", phone),
                ("code", code),
            ],
        )
        .await
    }

    pub async fn consent(&self, base: &str, page: &str, decision: &str) -> reqwest::Response {
        let (i, c) = (hidden(page, "interaction"), hidden(page, "csrf"));
        self.post(
            &format!("{base}/consent"),
            &[("interaction", &i), ("csrf", &c), ("decision", decision)],
        )
        .await
    }

    /// Follows an authorization request through login (as the test person, [`ID_NUMBER`]) and
    /// consent to the redirect's parameters.
    pub async fn authorize(&self, base: &str, url: &str) -> HashMap<String, String> {
        let mut response = self.get(url).await;
        loop {
            if response.status().is_redirection() {
                return redirect_params(&response);
            }
            let body = response.text().await.unwrap();
            response = if body.contains("action=\"/login\"") {
                self.login(base, &body, ID_NUMBER, PASSWORD).await
            } else if body.contains("action=\"/consent\"") {
                self.consent(base, &body, "allow").await
            } else {
                panic!("unexpected page: {body}");
            };
        }
    }
}

/// The value of the hidden form field `name` on `page`.
pub fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

/// The parameters of a redirect's location, from its query and its fragment.
pub fn redirect_params(response: &reqwest::Response) -> HashMap<String, String> {
    let location = response.headers()["location"].to_str().unwrap();
    let url = url::Url::parse(location).unwrap();
    let mut params: HashMap<String, String> = url.query_pairs().into_owned().collect();
    if let Some(fragment) = url.fragment() {
        params.extend(url::form_urlencoded::parse(fragment.as_bytes()).into_owned());
    }
    params
}
