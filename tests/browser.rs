//! The staff pages in a real browser: Debian's Chromium driven over WebDriver
//! (chromedriver), against `hedui serve` over TLS on loopback, as a clerk, an admin and a
//! stranger use them. Without chromedriver the test says so and passes, unless
//! `HEDUI_REQUIRE_BROWSER` is set (as `.ci/run` sets it).
//!
//! With `HEDUI_SCREENSHOTS=DIR` it also writes a screenshot of every page it visits
//! (1366×768) and the household's 核对报告 and the batch's report.html printed to A4 PDF
//! into DIR — the command in docs/PAGES.md.

mod support;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use support::pages::*;
use support::server::*;

/// chromedriver on a free loopback port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `name` on the PATH.
fn installed(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// chromedriver, started; `None` (the test skipped) when it is not installed and the
/// browser is not required.
fn driver() -> Option<Driver> {
    let Some(exe) = installed("chromedriver") else {
        assert!(
            std::env::var_os("HEDUI_REQUIRE_BROWSER").is_none(),
            "chromedriver is not installed: apt-get install chromium chromium-driver fonts-noto-cjk"
        );
        eprintln!("browser tests skipped: chromedriver is not installed");
        return None;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The browser in Chinese, as a centre's machines are (dates in inputs, too).
    let child = Command::new(exe)
        .arg(format!("--port={port}"))
        .env("LANGUAGE", "zh_CN:zh")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "chromedriver did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    })
}

/// A headless Chromium window of 1366×768 in Chinese, saving downloads into
/// `downloads`. The server's certificate is the test's own: the browser accepts it.
async fn chromium(d: &Driver, downloads: &Path) -> Client {
    let mut options = json!({
        "args": [
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--window-size=1366,768",
            "--lang=zh-CN",
            "--hide-scrollbars",
        ],
        "prefs": {
            "download.default_directory": downloads.display().to_string(),
            "download.prompt_for_download": false,
            "intl.accept_languages": "zh-CN",
        },
    });
    if let Some(bin) = installed("chromium") {
        options["binary"] = json!(bin.display().to_string());
    }
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert("acceptInsecureCerts".into(), json!(true));
    caps.insert("goog:chromeOptions".into(), options);
    let b = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&d.url)
        .await
        .expect("a Chromium session");
    b.set_window_size(1366, 768).await.unwrap();
    b
}

/// Where screenshots go, when asked for.
fn shots() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("HEDUI_SCREENSHOTS")?);
    std::fs::create_dir_all(&dir).unwrap();
    Some(dir)
}

/// A screenshot of the window as `name`.png, when asked for.
async fn shot(b: &Client, name: &str) {
    if let Some(dir) = shots() {
        let png = b.screenshot().await.unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

/// The page printed to A4 as `name`.pdf, when asked for.
async fn print(b: &Client, name: &str) {
    if let Some(dir) = shots() {
        let pdf = b
            .print(
                fantoccini::wd::PrintConfiguration::builder()
                    .background(true)
                    .build()
                    .unwrap(),
            )
            .await
            .unwrap();
        std::fs::write(dir.join(format!("{name}.pdf")), pdf).unwrap();
    }
}

/// The text of the page's `<main>`.
async fn main_text(b: &Client) -> String {
    b.find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The page's markup, checked for what staff must never see: an ID number or an
/// account number in full (a run of 15 or more digits, an ID's 17 digits and X).
async fn source_for_staff(b: &Client) -> String {
    let html = b.source().await.unwrap();
    let mut run = 0;
    for c in html.chars() {
        run = if c.is_ascii_digit() { run + 1 } else { 0 };
        assert!(
            run < 15,
            "a full ID or account number on {}",
            b.current_url().await.unwrap()
        );
    }
    html
}

/// Signs in with the page's form.
async fn sign_in_as(b: &Client, url: &str, name: &str, password: &str) {
    b.goto(&format!("{url}/ui/login")).await.unwrap();
    let f = b
        .form(Locator::Css("form[action='/ui/login']"))
        .await
        .unwrap();
    f.set_by_name("name", name).await.unwrap();
    f.set_by_name("password", password).await.unwrap();
    b.execute("window.heduiOld = 1;", vec![]).await.unwrap();
    f.submit().await.unwrap();
    loaded(b).await;
}

/// Waits until the page a form or link led to has loaded (a mark on the old page's
/// window is gone, and the new one has its `<main>`).
async fn loaded(b: &Client) {
    let started = Instant::now();
    loop {
        let fresh = b
            .execute(
                "return window.heduiOld === undefined && document.readyState === 'complete' \
                 && !!document.querySelector('main');",
                vec![],
            )
            .await;
        if matches!(fresh, Ok(Value::Bool(true))) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the next page did not load"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of attribute `a` of the first element matching `css`.
async fn attr(b: &Client, css: &str, a: &str) -> String {
    b.find(Locator::Css(css))
        .await
        .unwrap_or_else(|_| panic!("no {css}"))
        .attr(a)
        .await
        .unwrap()
        .unwrap_or_default()
}

/// Waits for a download named `name` to be complete in `dir`.
fn downloaded(dir: &Path, name: &str) -> Vec<u8> {
    let path = dir.join(name);
    let started = Instant::now();
    loop {
        let partial = std::fs::read_dir(dir).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".crdownload")
        });
        if path.is_file() && !partial {
            return std::fs::read(&path).unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{name} was not downloaded"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A GET with the browser's session cookie, outside the browser: the status the page
/// was served with (WebDriver does not tell it).
async fn status_of(s: &Server, b: &Client, path: &str) -> u16 {
    let cookie = b.get_named_cookie("hedui_session").await.unwrap();
    let (status, _, _) = get(
        &browser(s),
        s,
        &format!("hedui_session={}", cookie.value()),
        path,
    )
    .await;
    status
}

/// The batch's applicants of 4101 as a GBK CSV in which one member's ID number has a
/// wrong check digit: that member's row (as the spreadsheet numbers it), household and
/// name.
fn with_a_bad_row(site: &Site) -> (Vec<u8>, u64, String, String) {
    bad_row_in(&rows_of(site, &["4101"]))
}

/// GBK CSV `rows` with the ID number of its third data row's member made wrong: the
/// rows, and that row's number, household and name.
fn bad_row_in(rows: &[u8]) -> (Vec<u8>, u64, String, String) {
    let text = encoding_rs::GBK.decode(rows).0.into_owned();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let at = 3;
    let mut cells: Vec<String> = lines[at].split(',').map(str::to_owned).collect();
    let id = cells[5].clone();
    let last = if id.ends_with('0') { '1' } else { '0' };
    cells[5] = format!("{}{last}", &id[..17]);
    let (hid, name) = (cells[0].clone(), cells[6].clone());
    lines[at] = cells.join(",");
    let text = lines.join("\r\n") + "\r\n";
    let gbk = encoding_rs::GBK.encode(&text).0.into_owned();
    (gbk, at as u64 + 1, hid, name)
}

/// The same rows as an XLSX workbook (first sheet, text cells).
fn as_xlsx(csv: &[u8]) -> Vec<u8> {
    let (text, _, _) = encoding_rs::GBK.decode(csv);
    let mut wb = rust_xlsxwriter::Workbook::new();
    let sheet = wb.add_worksheet();
    for (r, line) in text.lines().enumerate() {
        for (col, cell) in line.split(',').enumerate() {
            sheet.write_string(r as u32, col as u16, cell).unwrap();
        }
    }
    wb.save_to_buffer().unwrap()
}

/// Picks `file` in the batch list's upload form and submits it.
async fn pick_and_submit(b: &Client, file: &Path) {
    b.find(Locator::Css("input[type=file][name=file]"))
        .await
        .unwrap()
        .send_keys(&file.display().to_string())
        .await
        .unwrap();
    b.find(Locator::Css("form.upload button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Uploads `file` with the batch list's form and returns the batch page's address.
async fn upload(b: &Client, url: &str, file: &Path) -> String {
    b.goto(&format!("{url}/ui/batches")).await.unwrap();
    pick_and_submit(b, file).await;
    b.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("[data-status]"))
        .await
        .unwrap();
    b.current_url().await.unwrap().to_string()
}

/// Waits until the batch page says done, without the page being loaded again: a mark
/// set on the window before must still be there.
async fn follow_to_done(b: &Client) {
    b.execute("window.heduiSamePage = 'yes';", vec![])
        .await
        .unwrap();
    b.wait()
        .at_most(Duration::from_secs(180))
        .every(Duration::from_millis(200))
        .for_element(Locator::Css("[data-status='done']"))
        .await
        .expect("the batch reached done");
    let same = b
        .execute("return window.heduiSamePage || 'reloaded';", vec![])
        .await
        .unwrap();
    assert_eq!(
        same,
        json!("yes"),
        "the page followed the job without a reload"
    );
}

/// A clerk in Chromium: signs in by keyboard, uploads a GBK CSV with a bad row and the same rows as
/// XLSX, watches each batch reach done without a reload, reads the bad row's reason with
/// the member's name, filters to ineligible, opens a household and reads its findings
/// and evidence, downloads results.xlsx and results.jsonl and finds them agreeing; gets
/// 404 for another region's batch, household and run by URL; a form without its CSRF
/// token is 403 and changes nothing; a locked account stays locked with the right
/// password; no page shows a full ID or account number; the admin's pages work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_works_in_a_real_browser() {
    let Some(d) = driver() else { return };
    let site = Site::new();
    // A first night of Ziyang's recipients only (run 1): not the clerk's to see. Then two
    // nights of the whole list (runs 2 and 3), the second with a change in 4101.
    std::fs::write(site.p("ziyang.csv"), rows_of(&site, &["5120"])).unwrap();
    site.reconcile_with("ziyang.csv", ["--lake", "lake"], "recon-ziyang");
    let (changed, _, changed_name) = two_nights(&site);
    add_user(&site, "wangli", "staff", "4101", "clerk-password-1");
    add_user(&site, "lisi", "staff", "4101", "clerk-password-2");
    add_user(&site, "zhangmin", "admin", "41,51,11", "admin-password-1");
    // Each job waits 3 s before it is done, so that the page is seen following it.
    let s = site.serve_with("hedui.toml", &[("HEDUI_PAUSE_BEFORE_RUN_DONE_MS", "3000")]);
    let url = s.url.trim_end_matches('/').to_owned();

    // Ziyang's own batch, over the API.
    let resp = client(&s)
        .post(format!("{url}/api/v1/batches"))
        .query(&[("file_name", "资阳.csv")])
        .header("content-type", "text/csv")
        .bearer_auth(SYSTEM_5120)
        .body(rows_of(&site, &["5120"]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let ziyang: Value = resp.json().await.unwrap();
    let ziyang = ziyang["batch_id"].as_str().unwrap().to_owned();

    let downloads = tempfile::tempdir().unwrap();
    let b = chromium(&d, downloads.path()).await;

    // Signing in.
    b.goto(&format!("{url}/ui/batches")).await.unwrap();
    assert!(b.current_url().await.unwrap().path().ends_with("/ui/login"));
    shot(&b, "01-login").await;
    // By keyboard alone: the name field has the focus; Tab to the password, Enter.
    let typed = format!(
        "wangli{}clerk-password-1{}",
        fantoccini::key::Key::Tab,
        fantoccini::key::Key::Enter
    );
    b.active_element()
        .await
        .unwrap()
        .send_keys(&typed)
        .await
        .unwrap();
    b.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("form.upload"))
        .await
        .unwrap();
    assert!(main_text(&b).await.contains("批量核对") || b.title().await.unwrap().contains("批"));

    // A GBK CSV with a bad row: followed to done, the bad row told with its name.
    let (csv, bad_row, bad_hid, bad_name) = with_a_bad_row(&site);
    let csv_path = site.dir.path().join("郑州申请.csv");
    std::fs::write(&csv_path, &csv).unwrap();
    let batch = upload(&b, &url, &csv_path).await;
    let status = attr(&b, "[data-status]", "data-status").await;
    assert!(
        status == "queued" || status == "running",
        "the page first shows the job under way: {status}"
    );
    shot(&b, "03-batch-running").await;
    follow_to_done(&b).await;
    assert_eq!(b.current_url().await.unwrap().to_string(), batch);
    let row = b
        .find(Locator::Css(&format!("[data-rejected-row='{bad_row}']")))
        .await
        .expect("the bad row is listed");
    let told = row.text().await.unwrap();
    assert!(
        told.contains(&bad_name) && told.contains("身份证号") && told.contains(&bad_hid),
        "{told}"
    );
    source_for_staff(&b).await;
    shot(&b, "04-batch").await;

    // The same rows as XLSX (this one without the bad row's mistake) also reach done.
    let xlsx_path = site.dir.path().join("郑州申请.xlsx");
    std::fs::write(&xlsx_path, as_xlsx(&rows_of(&site, &["4101"]))).unwrap();
    let second = upload(&b, &url, &xlsx_path).await;
    follow_to_done(&b).await;
    assert!(
        b.find(Locator::Css(&format!("[data-rejected-row='{bad_row}']")))
            .await
            .is_err(),
        "{}",
        main_text(&b).await
    );
    let xlsx_households = b
        .find_all(Locator::Css("tr[data-household-id]"))
        .await
        .unwrap()
        .len();
    assert!(xlsx_households > 0);
    assert_ne!(second, batch);
    b.goto(&format!("{url}/ui/batches")).await.unwrap();
    let listed = source_for_staff(&b).await;
    assert!(listed.contains("郑州申请.csv") && listed.contains("郑州申请.xlsx"));
    shot(&b, "02-batches").await;

    // The downloads, as the browser saves them.
    b.goto(&batch).await.unwrap();
    for name in ["results.jsonl", "results.xlsx"] {
        b.find(Locator::Css(&format!("a[href$='/files/{name}']")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        downloaded(downloads.path(), name);
    }
    let results: Vec<Value> = String::from_utf8(downloaded(downloads.path(), "results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!results.is_empty());
    assert!(
        results.iter().all(|r| r["household_id"] != bad_hid),
        "the household with the bad row is not checked"
    );
    let bytes = downloaded(downloads.path(), "results.xlsx");
    let mut wb: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    use calamine::Reader as _;
    let households = wb.worksheet_range("家庭").unwrap();
    let cells: Vec<Vec<String>> = households
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    assert_eq!(cells.len() - 1, results.len());
    for (row, line) in cells[1..].iter().zip(&results) {
        assert_eq!(row[0], line["household_id"].as_str().unwrap());
        assert_eq!(
            row[6].replace(',', ""),
            line["per_capita_monthly_income"].as_str().unwrap()
        );
    }
    let rejected = wb.worksheet_range("名单错误行").unwrap();
    let bad: Vec<String> = rejected
        .rows()
        .nth(1)
        .expect("the bad row in the workbook")
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(bad[0], bad_row.to_string());
    assert_eq!(
        (bad[1].as_str(), bad[2].as_str()),
        (bad_hid.as_str(), bad_name.as_str())
    );
    assert_eq!(bad[4], "身份证号有误");

    // Filtering to ineligible: every row listed is, and all of them are.
    let ineligible = results
        .iter()
        .filter(|r| r["verdict"] == "ineligible")
        .count();
    assert!(ineligible > 0);
    b.find(Locator::Css("select[name=verdict]"))
        .await
        .unwrap()
        .select_by_value("ineligible")
        .await
        .unwrap();
    b.find(Locator::Css("form.filters button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait()
        .at_most(Duration::from_secs(10))
        .for_url(&{
            let mut u = url::Url::parse(&batch).unwrap();
            u.set_query(Some("verdict=ineligible&rule=&region=&q="));
            u
        })
        .await
        .unwrap();
    let rows = b.find_all(Locator::Css("tr[data-verdict]")).await.unwrap();
    assert_eq!(rows.len(), ineligible);
    for r in &rows {
        assert_eq!(
            r.attr("data-verdict").await.unwrap().as_deref(),
            Some("ineligible")
        );
    }
    b.execute(
        "document.querySelector('form.filters').scrollIntoView();",
        vec![],
    )
    .await
    .unwrap();
    shot(&b, "05-batch-ineligible").await;

    // Searching by a member's name finds their household.
    let (hid, name) = {
        let first = &rows[0];
        let hid = first.attr("data-household-id").await.unwrap().unwrap();
        let bytes = std::fs::read(site.p("city/applicants.csv")).unwrap();
        let (text, _, _) = encoding_rs::GBK.decode(&bytes);
        let name = text
            .lines()
            .map(|l| l.split(',').map(str::to_owned).collect::<Vec<_>>())
            .find(|c| c[0] == hid)
            .unwrap()[6]
            .clone();
        (hid, name)
    };
    b.goto(&format!("{batch}?q={name}")).await.unwrap();
    let found: Vec<String> = {
        let mut v = Vec::new();
        for r in b
            .find_all(Locator::Css("tr[data-household-id]"))
            .await
            .unwrap()
        {
            v.push(r.attr("data-household-id").await.unwrap().unwrap());
        }
        v
    };
    assert!(found.contains(&hid), "{name} → {found:?}");

    // A household's 核对报告: its findings with their evidence, in words, masked.
    b.goto(&format!("{batch}?verdict=ineligible"))
        .await
        .unwrap();
    b.find(Locator::Css(&format!("tr[data-household-id='{hid}'] a")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let report = b
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("article[data-household-id]"))
        .await
        .unwrap();
    assert_eq!(
        report.attr("data-verdict").await.unwrap().as_deref(),
        Some("ineligible")
    );
    let line = results.iter().find(|r| r["household_id"] == hid).unwrap();
    let findings = b.find_all(Locator::Css("[data-rule]")).await.unwrap();
    assert_eq!(findings.len(), line["flags"].as_array().unwrap().len());
    for (f, flag) in findings.iter().zip(line["flags"].as_array().unwrap()) {
        assert_eq!(
            f.attr("data-rule").await.unwrap().as_ref(),
            flag["rule"].as_str().map(str::to_owned).as_ref()
        );
        let member = f.attr("data-member").await.unwrap().unwrap_or_default();
        assert!(member.is_empty() || member.contains("********"), "{member}");
    }
    let text = main_text(&b).await;
    assert!(text.contains("核对报告") && text.contains("依据"), "{text}");
    assert!(
        !text.contains("usage=") && !text.contains("area_m2"),
        "evidence in words: {text}"
    );
    source_for_staff(&b).await;
    shot(&b, "06-household").await;
    print(&b, "06-household").await;

    // The printed batch report.
    b.goto(&format!("{batch}/files/report.html")).await.unwrap();
    source_for_staff(&b).await;
    print(&b, "07-report").await;

    // The night's work list: the household that became ineligible leads, by name.
    b.goto(&format!("{url}/ui/reconciliations")).await.unwrap();
    source_for_staff(&b).await;
    let mut runs = Vec::new();
    for r in b.find_all(Locator::Css("tr[data-run-id]")).await.unwrap() {
        runs.push(r.attr("data-run-id").await.unwrap().unwrap());
    }
    assert_eq!(runs, ["3", "2"], "Ziyang's run is not listed");
    shot(&b, "08-reconciliations").await;
    b.goto(&format!("{url}/ui/reconciliations/3"))
        .await
        .unwrap();
    assert_eq!(attr(&b, "[data-change]", "data-change").await, changed);
    assert!(main_text(&b).await.contains(&changed_name));
    source_for_staff(&b).await;
    shot(&b, "09-run").await;
    // Marked handled with a note.
    let change = b
        .find(Locator::Css("[data-change] form.mark"))
        .await
        .unwrap();
    change
        .find(Locator::Css("input[name=note]"))
        .await
        .unwrap()
        .send_keys("已电话核实")
        .await
        .unwrap();
    change
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("[data-handled]"))
        .await
        .expect("the change is marked handled");
    assert!(main_text(&b).await.contains("已电话核实"));

    // Another region's batch, household and run: 404 by URL, in words.
    for path in [
        format!("/ui/batches/{ziyang}"),
        format!("/ui/batches/{ziyang}/households/{hid}"),
        "/ui/reconciliations/1".to_owned(),
    ] {
        b.goto(&format!("{url}{path}")).await.unwrap();
        assert!(main_text(&b).await.contains("没有找到"), "{path}");
        assert_eq!(status_of(&s, &b, &path).await, 404, "{path}");
    }
    shot(&b, "10-not-found").await;

    // A form without its CSRF token: 403, in words, and nothing queued.
    b.goto(&format!("{url}/ui/batches")).await.unwrap();
    let before = b
        .find_all(Locator::Css("tr[data-batch-id]"))
        .await
        .unwrap()
        .len();
    b.execute(
        "document.querySelector('form.upload input[name=csrf]').remove();",
        vec![],
    )
    .await
    .unwrap();
    pick_and_submit(&b, &csv_path).await;
    b.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("section.problem"))
        .await
        .unwrap();
    assert!(main_text(&b).await.contains("未做任何更改"));
    shot(&b, "11-csrf").await;
    b.goto(&format!("{url}/ui/batches")).await.unwrap();
    let after = b
        .find_all(Locator::Css("tr[data-batch-id]"))
        .await
        .unwrap()
        .len();
    assert_eq!(after, before, "nothing was queued");

    // Signing out, then a locked account: five wrong passwords, then the right one.
    b.find(Locator::Css("form.who button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    for _ in 0..5 {
        sign_in_as(&b, &url, "lisi", "not-the-password").await;
    }
    sign_in_as(&b, &url, "lisi", "clerk-password-2").await;
    let text = main_text(&b).await;
    assert!(text.contains("已锁定"), "{text}");
    assert!(b.current_url().await.unwrap().path().ends_with("/ui/login"));
    shot(&b, "12-locked").await;

    // The admin's pages: sources, the audit log (with the chain verified), accounts.
    sign_in_as(&b, &url, "zhangmin", "admin-password-1").await;
    b.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("form.upload"))
        .await
        .unwrap();
    b.goto(&format!("{url}/ui/sources")).await.unwrap();
    assert_eq!(
        b.find_all(Locator::Css("[data-source]"))
            .await
            .unwrap()
            .len(),
        6
    );
    shot(&b, "13-sources").await;
    b.goto(&format!("{url}/ui/audit?verify=1")).await.unwrap();
    let audit = main_text(&b).await;
    assert!(audit.contains("wangli"), "{audit}");
    let verified = b
        .find(Locator::Css("[data-verify]"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(verified.contains("完整"), "{verified}");
    shot(&b, "14-audit").await;
    b.goto(&format!("{url}/ui/users")).await.unwrap();
    let users = main_text(&b).await;
    assert!(
        users.contains("wangli") && users.contains("lisi"),
        "{users}"
    );
    shot(&b, "15-users").await;

    b.close().await.unwrap();
}

/// An admin in Chromium replaces the recipients list: a list with a wrong ID number is
/// refused, the row told by number and the list left as it was; the corrected list
/// becomes the current one, its households listed masked and the change in the
/// history; "立即复核" on the reconciliations page runs the night's check now on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_replaces_the_recipients_list_in_a_real_browser() {
    let Some(d) = driver() else { return };
    let site = Site::new();
    add_user(&site, "zhangmin", "admin", "41,51,11", "admin-password-1");
    let s = site.serve();
    let url = s.url.trim_end_matches('/').to_owned();
    let downloads = tempfile::tempdir().unwrap();
    let b = chromium(&d, downloads.path()).await;
    sign_in_as(&b, &url, "zhangmin", "admin-password-1").await;

    // The menu leads there.
    b.find(Locator::Css("nav a[href='/ui/recipients']"))
        .await
        .expect("the admin's menu has the recipients list")
        .click()
        .await
        .unwrap();
    b.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("form.recipients"))
        .await
        .unwrap();
    assert!(main_text(&b).await.contains("还没有在保名单"));

    // A wrong ID number: refused, by row.
    let clean = accepted_rows(&site, &["41", "51"]);
    let (bad, bad_row, _, _) = bad_row_in(&clean);
    let bad_path = site.dir.path().join("在保名单-有错.csv");
    std::fs::write(&bad_path, &bad).unwrap();
    b.execute("window.heduiOld = 1;", vec![]).await.unwrap();
    pick_and_submit(&b, &bad_path).await;
    loaded(&b).await;
    let row = b
        .find(Locator::Css(&format!("[data-rejected-row='{bad_row}']")))
        .await
        .expect("the bad row is listed by number");
    assert!(
        row.text().await.unwrap().contains("身份证"),
        "{}",
        row.text().await.unwrap()
    );
    let text = main_text(&b).await;
    assert!(
        text.contains("名单未更换") && text.contains("还没有在保名单"),
        "{text}"
    );
    for id in ids_of(&bad) {
        assert!(!text.contains(&id), "no full ID number: {id}");
    }
    shot(&b, "16-recipients-refused").await;

    // The corrected list.
    let good_path = site.dir.path().join("在保名单.csv");
    std::fs::write(&good_path, &clean).unwrap();
    b.execute("window.heduiOld = 1;", vec![]).await.unwrap();
    pick_and_submit(&b, &good_path).await;
    loaded(&b).await;
    assert_eq!(attr(&b, "dl.summary", "data-version").await, "1");
    let text = main_text(&b).await;
    assert!(
        text.contains("已更换在保名单") && text.contains("在保名单.csv"),
        "{text}"
    );
    for id in ids_of(&clean) {
        assert!(!text.contains(&id), "no full ID number: {id}");
    }
    assert!(
        b.find_all(Locator::Css("tr[data-household-id]"))
            .await
            .unwrap()
            .len()
            > 3,
        "its households listed"
    );
    b.find(Locator::Css("tr[data-list-version='1']"))
        .await
        .expect("the change in the history");
    shot(&b, "17-recipients").await;

    // 立即复核.
    b.goto(&format!("{url}/ui/reconciliations")).await.unwrap();
    b.execute("window.heduiOld = 1;", vec![]).await.unwrap();
    b.find(Locator::Css("form.start button"))
        .await
        .expect("the admin's button")
        .click()
        .await
        .unwrap();
    loaded(&b).await;
    assert!(main_text(&b).await.contains("已发起复核"));
    shot(&b, "18-reconcile-now").await;
    let started = Instant::now();
    loop {
        b.goto(&format!("{url}/ui/reconciliations")).await.unwrap();
        if b.find(Locator::Css("tr[data-run-id='1'][data-status='done']"))
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the run did not finish"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    b.close().await.unwrap();
}
