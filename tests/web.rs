//! The staff pages over HTTPS (SPEC §11), as a browser's requests: sign-in with a
//! session cookie, CSRF tokens on every form, the batch list, an upload, a batch page
//! that reaches done, region rules by URL, locked accounts, sign-out. (The same pages
//! in a real browser: tests/browser.rs.)

mod support;

use std::io::Write as _;
use std::process::Stdio;

use support::server::*;

/// Adds account `name` to the site's state with `hedui user add`.
fn add_user(site: &Site, name: &str, role: &str, regions: &str, password: &str) {
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
fn browser(s: &Server) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(s.ca.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Signs in as `name`: the session cookie (`hedui_session=…`) and the response.
async fn sign_in(
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
fn session_of(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

/// GET `path` with `cookie`: status, headers' Location, body.
async fn get(c: &reqwest::Client, s: &Server, cookie: &str, path: &str) -> (u16, String, String) {
    let resp = c
        .get(format!("{}{path}", s.url))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
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
fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[at..at + 64].to_owned()
}

/// A multipart form of text `fields` and one file part.
fn form(fields: &[(&str, &str)], file: &[u8], file_name: &str) -> (String, Vec<u8>) {
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

/// A clerk signs in, uploads a GBK batch with the page's form and follows it to done;
/// the page lists its households with verdicts, never a full ID number; forms without
/// their CSRF token are 403 and change nothing; another region's clerk gets 404 for
/// the batch and its files by URL; five wrong passwords lock an account, which a
/// right one then does not open; signing out ends the session; page actions are
/// audited as user:NAME.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_signs_in_uploads_and_reads_a_batch() {
    let site = Site::new();
    add_user(&site, "wangli", "staff", "4101", "clerk-password-1");
    add_user(&site, "zhaoqiang", "staff", "5120", "clerk-password-2");
    let s = site.serve();
    let c = browser(&s);

    let (status, location, _) = get(&c, &s, "", "/").await;
    assert_eq!((status, location.as_str()), (303, "/ui/"));
    let (status, location, _) = get(&c, &s, "", "/ui/batches").await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/ui/login"),
        "no session: sign in"
    );
    let (status, _, page) = get(&c, &s, "", "/ui/login").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("name=\"name\"") && page.contains("name=\"password\""),
        "{page}"
    );

    let (cookie, resp) = sign_in(&c, &s, "wangli", "wrong-password").await;
    assert_eq!(resp.status().as_u16(), 401);
    assert!(cookie.is_none());
    assert!(resp.text().await.unwrap().contains("用户名或密码错误"));
    let (cookie, resp) = sign_in(&c, &s, "wangli", "clerk-password-1").await;
    assert_eq!(resp.status().as_u16(), 303);
    let set = cookie.expect("a session cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    let wang = session_of(&set);

    let resp = c
        .get(format!("{}/ui/batches", s.url))
        .header("cookie", &wang)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    let page = resp.text().await.unwrap();
    assert!(page.contains("wangli（工作人员）"), "{page}");
    let csrf = csrf_of(&page);

    // An upload without the CSRF token (or with a wrong one) is 403 and queues nothing.
    let rows = rows_of(&site, &["4101"]);
    for token in [None, Some("0".repeat(64))] {
        let mut fields = vec![("as_of", site.today.as_str())];
        if let Some(t) = &token {
            fields.push(("csrf", t.as_str()));
        }
        let (ct, body) = form(&fields, &rows, "郑州.csv");
        let resp = c
            .post(format!("{}/ui/batches", s.url))
            .header("cookie", &wang)
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 403, "csrf {token:?}");
        assert!(resp.text().await.unwrap().contains("未做任何更改"));
    }
    let (_, _, page) = get(&c, &s, &wang, "/ui/batches").await;
    assert!(
        !page.contains("data-batch-id"),
        "a batch was queued without its CSRF token"
    );

    // A refused file is said on the page, in Chinese.
    let (ct, body) = form(&[("csrf", &csrf)], b"foo,bar\n1,2\n", "bad.csv");
    let resp = c
        .post(format!("{}/ui/batches", s.url))
        .header("cookie", &wang)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 422);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("无法读取批次文件“bad.csv”"));

    let (ct, body) = form(
        &[("csrf", &csrf), ("as_of", &site.today)],
        &rows,
        "郑州.csv",
    );
    let resp = c
        .post(format!("{}/ui/batches", s.url))
        .header("cookie", &wang)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    let at = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(at.starts_with("/ui/batches/"), "{at}");
    let id = at.trim_start_matches("/ui/batches/").to_owned();

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let page = loop {
        let (status, _, page) = get(&c, &s, &wang, &at).await;
        assert_eq!(status, 200);
        if page.contains("data-status=\"done\"") {
            break page;
        }
        assert!(!page.contains("data-status=\"failed\""), "{page}");
        assert!(
            page.contains("data-follow"),
            "a page in progress follows its job: {page}"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the batch did not finish"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    let households = page.matches("data-household-id=").count();
    assert!(households > 0, "{page}");
    assert!(
        page.contains("data-verdict=\"ineligible\"") || page.contains("data-verdict=\"review\""),
        "{page}"
    );
    for id_number in ids_of(&rows) {
        assert!(
            !page.contains(&id_number),
            "a full ID number shown to staff"
        );
    }
    // Filtered to one verdict: only its households.
    let (_, _, only) = get(&c, &s, &wang, &format!("{at}?verdict=ineligible")).await;
    let shown = only.matches("data-verdict=").count();
    assert_eq!(
        shown,
        only.matches("data-verdict=\"ineligible\"").count(),
        "{only}"
    );
    // A household's 核对报告: its findings in words with their evidence, the members
    // as declared, masked; a household the batch does not have is 404.
    let at_hid = only
        .find("data-household-id=\"")
        .expect("an ineligible household")
        + 19;
    let hid = only[at_hid..].split('"').next().unwrap().to_owned();
    let report_path = format!("{at}/households/{hid}");
    let (status, _, report) = get(&c, &s, &wang, &report_path).await;
    assert_eq!(status, 200, "{report}");
    assert!(
        report.contains("居民家庭经济状况核对报告") && report.contains("报告编号"),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "data-household-id=\"{hid}\" data-verdict=\"ineligible\""
        )),
        "{report}"
    );
    assert!(report.contains("data-rule=\""), "{report}");
    assert!(
        report.contains("核对人（签字）") && report.contains("盖章"),
        "{report}"
    );
    assert!(report.contains("与申请人关系"), "{report}");
    for member in report
        .split("data-member=\"")
        .skip(1)
        .map(|m| m.split('"').next().unwrap())
    {
        assert!(
            member.is_empty() || member.contains('*'),
            "member {member} shown in full"
        );
    }
    for id_number in ids_of(&rows) {
        assert!(
            !report.contains(&id_number),
            "a full ID number in the report"
        );
    }
    let (status, _, _) = get(&c, &s, &wang, &format!("{at}/households/NO-SUCH-HOUSEHOLD")).await;
    assert_eq!(status, 404);

    // Downloads, masked for staff.
    let (status, _, results) = get(&c, &s, &wang, &format!("{at}/files/results.jsonl")).await;
    assert_eq!(status, 200);
    assert_eq!(
        results.lines().count(),
        households,
        "one page holds them all here"
    );
    for id_number in ids_of(&rows) {
        assert!(!results.contains(&id_number));
    }

    // results.xlsx: the households, every finding with its evidence, the rejected rows;
    // read back, it says what results.jsonl says, ID numbers masked for staff.
    let resp = c
        .get(format!("{}{at}/files/results.xlsx", s.url))
        .header("cookie", &wang)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let bytes = resp.bytes().await.unwrap().to_vec();
    let mut wb: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    use calamine::Reader as _;
    assert_eq!(wb.sheet_names(), ["家庭", "发现与依据", "名单错误行"]);
    let sheet = wb.worksheet_range("家庭").unwrap();
    let cells: Vec<Vec<String>> = sheet
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    assert_eq!(cells[0][0], "申请编号");
    assert_eq!(cells[0][4], "核对结论");
    let lines: Vec<serde_json::Value> = results
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(cells.len() - 1, lines.len());
    let zh = |v: &str| match v {
        "eligible" => "符合条件",
        "ineligible" => "不符合条件",
        "review" => "需人工复核",
        _ => "数据不全",
    };
    for (row, line) in cells[1..].iter().zip(&lines) {
        assert_eq!(row[0], line["household_id"].as_str().unwrap());
        assert_eq!(row[4], zh(line["verdict"].as_str().unwrap()), "{row:?}");
        // The exact decimal, only thousands separated.
        assert_eq!(
            row[6].replace(',', ""),
            line["per_capita_monthly_income"].as_str().unwrap()
        );
    }
    let findings = wb.worksheet_range("发现与依据").unwrap();
    let flags: usize = lines
        .iter()
        .map(|l| l["flags"].as_array().unwrap().len())
        .sum();
    // A row per evidence record (a finding without records has one of its own).
    assert!(
        flags > 0 && findings.rows().count() - 1 >= flags,
        "findings with their evidence"
    );
    let all: String = findings
        .rows()
        .flat_map(|r| r.iter().map(|c| c.to_string()))
        .collect::<Vec<_>>()
        .join("|");
    assert!(
        all.contains("身份证号") || all.contains("金额（元）") || all.contains("余额（元）"),
        "evidence in words"
    );
    for id_number in ids_of(&rows) {
        assert!(
            !all.contains(&id_number),
            "a full ID number in the workbook for staff"
        );
    }

    // Another region's clerk: 404 by URL, for the page and its files.
    let (zhao, _) = sign_in(&c, &s, "zhaoqiang", "clerk-password-2").await;
    let zhao = session_of(&zhao.unwrap());
    for path in [
        at.clone(),
        format!("{at}/files/results.jsonl"),
        format!("{at}/files/report.html"),
    ] {
        let (status, _, _) = get(&c, &s, &zhao, &path).await;
        assert_eq!(status, 404, "{path}");
    }
    let (_, _, list) = get(&c, &s, &zhao, "/ui/batches").await;
    assert!(!list.contains(&id), "another clerk's batch listed");

    // Five wrong passwords lock; the right one does not open a locked account.
    for i in 1..=5 {
        let (_, resp) = sign_in(&c, &s, "zhaoqiang", "not-the-password").await;
        let page = resp.text().await.unwrap();
        assert_eq!(page.contains("账户已锁定"), i == 5, "attempt {i}: {page}");
    }
    let (cookie, resp) = sign_in(&c, &s, "zhaoqiang", "clerk-password-2").await;
    assert_eq!(resp.status().as_u16(), 403);
    assert!(cookie.is_none());
    let (status, _, _) = get(&c, &s, &zhao, "/ui/batches").await;
    assert_eq!(
        status, 200,
        "a lock keeps out sign-ins, it signs nobody out"
    );
    // A name that does not exist answers the same: five tries, then "locked".
    for i in 1..=6 {
        let (_, resp) = sign_in(&c, &s, "no-such-clerk", "not-the-password").await;
        let status = resp.status().as_u16();
        let page = resp.text().await.unwrap();
        assert_eq!(page.contains("账户已锁定"), i >= 5, "attempt {i}: {page}");
        assert_eq!(status, if i >= 5 { 403 } else { 401 }, "attempt {i}");
    }

    // Signing out: the CSRF token required; then the cookie opens nothing.
    let resp = c
        .post(format!("{}/ui/logout", s.url))
        .header("cookie", &wang)
        .form(&[("csrf", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let resp = c
        .post(format!("{}/ui/logout", s.url))
        .header("cookie", &wang)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    let (status, location, _) = get(&c, &s, &wang, "/ui/batches").await;
    assert_eq!((status, location.as_str()), (303, "/ui/login"));

    // Audited as the account: the upload's batch and the page reading its households.
    drop(s);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hedui"))
        .args(["audit", "verify", "--config", &site.p("hedui.toml")])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let db = rusqlite::Connection::open(site.dir.path().join("state/hedui.db")).unwrap();
    let kinds: Vec<String> = db
        .prepare("SELECT kind || ':' || json_extract(detail, '$.read') FROM audit WHERE actor = 'user:wangli'")
        .unwrap()
        .query_map([], |r| r.get::<_, Option<String>>(0).map(|k| k.unwrap_or_default()))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(kinds.iter().any(|k| k == "read:page_batch"), "{kinds:?}");
    assert!(
        kinds.iter().any(|k| k == "read:page_household"),
        "{kinds:?}"
    );
    let batch: i64 = db
        .query_row(
            "SELECT count(*) FROM audit WHERE actor = 'user:wangli' AND kind = 'batch'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(batch, 1);
}
