//! The staff pages as a browser's requests make them (tests/web.rs) and as a real
//! browser does (tests/browser.rs): accounts, sign-in, forms, sessions.

use std::io::Write as _;
use std::process::Stdio;

use super::server::{Server, Site};

/// Adds account `name` to the site's state with `hedui user add`.
pub fn add_user(site: &Site, name: &str, role: &str, regions: &str, password: &str) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hedui"))
        .args([
            "user",
            "add",
            "--config",
            &site.p("hedui.toml"),
            "--name",
            name,
            "--role",
            role,
            "--regions",
            regions,
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(password.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A browser's client: follows no redirect by itself (the tests read each one).
pub fn browser(s: &Server) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(s.ca.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Signs in as `name`: the session cookie (`hedui_session=…`) and the response.
pub async fn sign_in(
    c: &reqwest::Client,
    s: &Server,
    name: &str,
    password: &str,
) -> (Option<String>, reqwest::Response) {
    let resp = c
        .post(format!("{}/ui/login", s.url))
        .form(&[("name", name), ("password", password)])
        .send()
        .await
        .unwrap();
    let cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (cookie, resp)
}

/// The `hedui_session=VALUE` part of a Set-Cookie header.
pub fn session_of(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

/// GET `path` with `cookie`: status, headers' Location, body.
pub async fn get(
    c: &reqwest::Client,
    s: &Server,
    cookie: &str,
    path: &str,
) -> (u16, String, String) {
    let resp = c
        .get(format!("{}{path}", s.url))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    answer(resp).await
}

/// A response as the tests read it: status, Location, body.
pub async fn answer(resp: reqwest::Response) -> (u16, String, String) {
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, location, resp.text().await.unwrap())
}

/// The value of the hidden `csrf` field of a page.
pub fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[at..at + 64].to_owned()
}

/// A multipart form of text `fields` and one file part.
pub fn form(fields: &[(&str, &str)], file: &[u8], file_name: &str) -> (String, Vec<u8>) {
    let boundary = "----hedui-web-test-boundary";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: text/csv\r\n\r\n").as_bytes());
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// POST the batch list's upload form as `multipart/form-data` with `cookie`: its text
/// `fields` and the file `file` named `file_name`.
pub async fn upload_form(
    c: &reqwest::Client,
    s: &Server,
    cookie: &str,
    fields: &[(&str, &str)],
    file: &[u8],
    file_name: &str,
) -> reqwest::Response {
    let (ct, body) = form(fields, file, file_name);
    c.post(format!("{}/ui/batches", s.url))
        .header("cookie", cookie)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// POST a url-encoded form to `path` with `cookie`: status, Location, body.
pub async fn post_form(
    c: &reqwest::Client,
    s: &Server,
    cookie: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> (u16, String, String) {
    let resp = c
        .post(format!("{}{path}", s.url))
        .header("cookie", cookie)
        .form(fields)
        .send()
        .await
        .unwrap();
    answer(resp).await
}

/// A signed-in session of `name`: its cookie and a CSRF token from `page`.
pub async fn session(
    c: &reqwest::Client,
    s: &Server,
    name: &str,
    password: &str,
    page: &str,
) -> (String, String) {
    let (cookie, resp) = sign_in(c, s, name, password).await;
    assert_eq!(resp.status().as_u16(), 303, "{name} signs in");
    let cookie = session_of(&cookie.unwrap());
    let (status, _, body) = get(c, s, &cookie, page).await;
    assert_eq!(status, 200, "{name}: {page}");
    let csrf = csrf_of(&body);
    (cookie, csrf)
}

/// The first household of `results.jsonl` with `verdict` in a region under `prefix`,
/// and the ID number and name of its first member (from the GBK applicants file).
pub fn household_of(
    site: &Site,
    results: &str,
    verdict: &str,
    prefix: &str,
) -> (String, String, String) {
    let text = std::fs::read_to_string(site.p(results)).unwrap();
    let hid = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["verdict"] == verdict && v["region_code"].as_str().unwrap().starts_with(prefix))
        .map(|v| v["household_id"].as_str().unwrap().to_owned())
        .expect("such a household");
    let bytes = std::fs::read(site.p("city/applicants.csv")).unwrap();
    let (text, _, _) = encoding_rs::GBK.decode(&bytes);
    let row: Vec<String> = text
        .lines()
        .map(|l| l.split(',').map(str::to_owned).collect::<Vec<_>>())
        .find(|r| r[0] == hid)
        .unwrap();
    (hid, row[5].clone(), row[6].clone())
}

/// Two nights of reconciliation of the city's applicants as recipients: the first on the
/// lake (into `recon/`); the second (into `recon2/`) on a copy of the sources in which an
/// eligible household of 4101 now owns a shop. That household, and the ID number and
/// name of its first member.
pub fn two_nights(site: &Site) -> (String, String, String) {
    site.reconcile();
    // The night after: an eligible household of 4101 now owns a shop.
    let (hid, id, name) = household_of(site, "recon/results.jsonl", "eligible", "4101");
    let src = site.p("sources2");
    std::fs::create_dir_all(&src).unwrap();
    for e in std::fs::read_dir(site.p("city/sources")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), std::path::Path::new(&src).join(e.file_name())).unwrap();
    }
    let mut prop = std::fs::read_to_string(format!("{src}/property.csv")).unwrap();
    prop.push_str(&format!(
        "{id},TEST-1,commercial,200.00,,2020-01-01,,测试路1号\n"
    ));
    std::fs::write(format!("{src}/property.csv"), prop).unwrap();
    site.reconcile_with("city/applicants.csv", ["--sources", "sources2"], "recon2");
    (hid, id, name)
}
