//! The staff pages over HTTPS (SPEC §11), as a browser's requests: sign-in with a
//! session cookie, CSRF tokens on every form, the batch list, an upload, a batch page
//! that reaches done, region rules by URL, locked accounts, sign-out. (The same pages
//! in a real browser: tests/browser.rs.)

mod support;

use support::pages::*;
use support::server::*;

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
    assert_eq!(
        resp.headers()["strict-transport-security"],
        "max-age=31536000",
        "over TLS, browsers are told to keep to TLS"
    );
    let page = resp.text().await.unwrap();
    assert!(page.contains("wangli（工作人员）"), "{page}");
    let csrf = csrf_of(&page);

    // The clerk's file: Zhengzhou's rows, the last household's 申请编号 with a slash in it.
    let (rows, slashed) = {
        let text = encoding_rs::GBK
            .decode(&rows_of(&site, &["4101"]))
            .0
            .into_owned();
        let last = text
            .lines()
            .last()
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .to_owned();
        let slashed = format!("{last}/2");
        let edited: String = text
            .lines()
            .map(|l| match l.strip_prefix(&format!("{last},")) {
                Some(rest) => format!("{slashed},{rest}\n"),
                None => format!("{l}\n"),
            })
            .collect();
        (encoding_rs::GBK.encode(&edited).0.into_owned(), slashed)
    };

    // An upload without the CSRF token (or with a wrong one) is 403 and queues nothing.
    for token in [None, Some("0".repeat(64))] {
        let mut fields = vec![("as_of", site.today.as_str())];
        if let Some(t) = &token {
            fields.push(("csrf", t.as_str()));
        }
        let resp = upload_form(&c, &s, &wang, &fields, &rows, "郑州.csv").await;
        assert_eq!(resp.status().as_u16(), 403, "csrf {token:?}");
        assert!(resp.text().await.unwrap().contains("未做任何更改"));
    }
    let (_, _, page) = get(&c, &s, &wang, "/ui/batches").await;
    assert!(
        !page.contains("data-batch-id"),
        "a batch was queued without its CSRF token"
    );

    // A refused file is said on the page, in Chinese.
    let resp = upload_form(
        &c,
        &s,
        &wang,
        &[("csrf", &csrf)],
        b"foo,bar\n1,2\n",
        "bad.csv",
    )
    .await;
    assert_eq!(resp.status().as_u16(), 422);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("无法读取批次文件“bad.csv”"));

    // A file with a household of a region the clerk may not check is refused whole,
    // naming the region and the row, and saying what to do.
    let mixed = rows_of(&site, &["4101", "5120"]);
    let resp = upload_form(&c, &s, &wang, &[("csrf", &csrf)], &mixed, "混合.csv").await;
    assert_eq!(resp.status().as_u16(), 403);
    let said = resp.text().await.unwrap();
    assert!(
        said.contains("批次中有您无权核对的行政区划：5120")
            && said.contains("行）")
            && said.contains("请删除"),
        "{said}"
    );

    let resp = upload_form(
        &c,
        &s,
        &wang,
        &[("csrf", &csrf), ("as_of", &site.today)],
        &rows,
        "郑州.csv",
    )
    .await;
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
    // A 申请编号 with a slash links to its own page (the slash percent-encoded).
    let link = format!("{at}/households/{}", slashed.replace('/', "%2F"));
    assert!(page.contains(&format!("href=\"{link}\"")), "{page}");
    assert_eq!(get(&c, &s, &wang, &link).await.0, 200);
    // A mistyped address under /ui/ is the pages' 404, in words; GET of a form's
    // address is told to use the page's buttons.
    let (status, _, nope) = get(&c, &s, &wang, "/ui/no-such-page").await;
    assert!(status == 404 && nope.contains("没有找到"), "{nope}");
    let (status, _, nope) = get(&c, &s, &wang, "/ui/logout").await;
    assert!(
        status == 405 && nope.contains("请使用页面上的链接和按钮"),
        "{nope}"
    );

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

/// The night's work list, the sources, the audit log and the accounts, as staff,
/// auditors and admins use them: a first run is a summary, not a list of new
/// households; a second run leads with the household that became ineligible, its
/// members by name and the evidence in words; marking it handled needs the CSRF token,
/// keeps who, when and the note (an ID in it masked) and is audited; another region's
/// clerk gets 404; the audit log finds a person by ID number without showing it; the
/// chain verifies; an admin adds, resets and disables accounts (never their own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_night_the_sources_the_audit_log_and_the_accounts() {
    let site = Site::new();
    let (hid, id, name) = two_nights(&site);
    add_user(&site, "wangli", "staff", "4101", "clerk-password-1");
    add_user(&site, "lin35", "staff", "35", "clerk-password-3");
    add_user(&site, "zhaoaudit", "auditor", "41", "audit-password-1");
    add_user(&site, "zhangadmin", "admin", "41,51", "admin-password-1");
    let s = site.serve();
    let c = browser(&s);

    // The list of runs, then the first run: a summary, no new eligible household listed.
    let (wang, csrf) = session(&c, &s, "wangli", "clerk-password-1", "/ui/reconciliations").await;
    let (_, _, list) = get(&c, &s, &wang, "/ui/reconciliations").await;
    assert!(
        list.contains("第 2 次") && list.contains("第 1 次"),
        "{list}"
    );
    let (status, _, first) = get(&c, &s, &wang, "/ui/reconciliations/1").await;
    assert_eq!(status, 200);
    assert!(first.contains("这是首次复核"), "{first}");
    assert!(
        !first.contains("data-verdict=\"eligible\""),
        "new eligible households are counted, not listed"
    );

    // The second run leads with the household that became ineligible.
    let (status, _, night) = get(&c, &s, &wang, "/ui/reconciliations/2").await;
    assert_eq!(status, 200);
    let at = night.find("data-change=").expect("a change");
    assert!(
        night[at..].starts_with(&format!("data-change=\"{hid}\"")),
        "{}",
        &night[at..at + 80]
    );
    assert!(night.contains("新变为不符合"));
    assert!(night.contains(&name), "members by name");
    assert!(
        night.contains("商业"),
        "the property's usage in words: {night}"
    );
    assert!(!night.contains(&id), "no full ID number for staff");
    // Masked as the engine reads it (a check letter typed in lower case is X).
    let upper = id.to_uppercase();
    assert!(night.contains(&format!("{}********{}", &upper[..6], &upper[14..])));

    // Marking it handled: 403 without the token, then kept with who, when and the note.
    let key_at = night.find("/ui/reconciliations/2/changes/").unwrap();
    let action: String = night[key_at..].chars().take_while(|c| *c != '"').collect();
    let note = format!("已上门核实，{id} 名下确有商铺，租金入账 6222 0212 3456 7890");
    let (status, _, _) = post_form(&c, &s, &wang, &action, &[("note", &note)]).await;
    assert_eq!(status, 403);
    let (_, _, still) = get(&c, &s, &wang, "/ui/reconciliations/2").await;
    assert!(
        !still.contains("data-handled"),
        "nothing marked without the token"
    );
    let (status, location, _) = post_form(
        &c,
        &s,
        &wang,
        &action,
        &[("csrf", &csrf), ("note", &note), ("page", "1")],
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/ui/reconciliations/2?page=1")
    );
    let (_, _, after) = get(&c, &s, &wang, "/ui/reconciliations/2").await;
    assert!(after.contains("已处理：wangli"), "{after}");
    assert!(
        after.contains("已上门核实") && !after.contains(&id),
        "the note kept, its ID masked"
    );
    assert!(
        after.contains("租金入账 622202******7890") && !after.contains("3456"),
        "a card number in a note is masked, however it is grouped: {after}"
    );
    let (_, _, open) = get(&c, &s, &wang, "/ui/reconciliations/2?show=open").await;
    assert!(
        !open.contains(&format!("data-change=\"{hid}\"")),
        "handled changes leave the open list"
    );
    let long = "长".repeat(2001);
    let (status, _, body) =
        post_form(&c, &s, &wang, &action, &[("csrf", &csrf), ("note", &long)]).await;
    assert_eq!(status, 422);
    assert!(body.contains("备注最多 2000 个字"), "{body}");

    // Another region's clerk: the run and the mark are 404.
    let (lin, lin_csrf) = session(&c, &s, "lin35", "clerk-password-3", "/ui/batches").await;
    let (_, _, none) = get(&c, &s, &lin, "/ui/reconciliations").await;
    assert!(!none.contains("第 2 次"), "{none}");
    assert_eq!(get(&c, &s, &lin, "/ui/reconciliations/2").await.0, 404);
    let (status, _, _) =
        post_form(&c, &s, &lin, &action, &[("csrf", &lin_csrf), ("note", "x")]).await;
    assert_eq!(status, 404);

    // The sources: every department, fresh, with its rows.
    let (status, _, sources) = get(&c, &s, &wang, "/ui/sources").await;
    assert_eq!(status, 200);
    for dept in ["hr", "housing", "police", "tax", "bank", "fund"] {
        assert!(
            sources.contains(&format!("data-source=\"{dept}\" data-state=\"fresh\"")),
            "{dept}: {sources}"
        );
    }
    assert!(
        sources.contains("车辆登记"),
        "tables by their Chinese names"
    );

    // The audit log: staff may not read it; an auditor finds the person by ID number.
    assert_eq!(get(&c, &s, &wang, "/ui/audit").await.0, 403);
    let (zhao, zcsrf) = session(&c, &s, "zhaoaudit", "audit-password-1", "/ui/audit").await;
    let lower = id.to_lowercase();
    let search = [("person", lower.as_str()), ("csrf", zcsrf.as_str())];
    // Posted without the session's token, the search is refused like any form.
    let (status, _, _) = post_form(&c, &s, &zhao, "/ui/audit", &search[..1]).await;
    assert_eq!(status, 403);
    let (status, _, found) = post_form(&c, &s, &zhao, "/ui/audit", &search).await;
    assert_eq!(status, 200);
    assert!(found.contains("此人出现在 "), "{found}");
    assert!(
        found.contains("查看复核工作清单") && found.contains("标记已处理"),
        "{found}"
    );
    assert!(!found.contains(&id), "the ID typed is never shown");
    assert!(
        !found.contains("lin35"),
        "lin35 read nothing of this person"
    );
    let (status, _, bad) = post_form(
        &c,
        &s,
        &zhao,
        "/ui/audit",
        &[("person", "4101021957"), ("csrf", &zcsrf)],
    )
    .await;
    assert_eq!(status, 422);
    assert!(bad.contains("身份证号格式有误"));
    let (_, _, verified) = get(&c, &s, &zhao, "/ui/audit?verify=1").await;
    assert!(verified.contains("审计链完整"), "{verified}");

    // Accounts: an admin adds a clerk, resets a password, disables — never themselves.
    assert_eq!(get(&c, &s, &wang, "/ui/users").await.0, 403);
    let (admin, acsrf) = session(&c, &s, "zhangadmin", "admin-password-1", "/ui/users").await;
    let add = [
        ("csrf", acsrf.as_str()),
        ("action", "add"),
        ("name", "liming"),
        ("role", "staff"),
        ("regions", "4102"),
        ("password", "liming-password"),
    ];
    let (status, _, _) = post_form(&c, &s, &admin, "/ui/users", &add[1..]).await;
    assert_eq!(status, 403, "no token, no account");
    let (status, location, _) = post_form(&c, &s, &admin, "/ui/users", &add).await;
    assert_eq!(status, 303);
    let (_, _, users) = get(&c, &s, &admin, &location).await;
    assert!(
        users.contains("已添加账户 liming")
            && users.contains("data-account=\"liming\" data-state=\"active\""),
        "{users}"
    );
    let (status, _, again) = post_form(&c, &s, &admin, "/ui/users", &add).await;
    assert_eq!(status, 409);
    assert!(again.contains("已存在"));
    let short = [
        ("csrf", acsrf.as_str()),
        ("action", "add"),
        ("name", "liu"),
        ("role", "staff"),
        ("regions", "4102"),
        ("password", "short"),
    ];
    let (status, _, body) = post_form(&c, &s, &admin, "/ui/users", &short).await;
    assert_eq!(status, 422);
    assert!(body.contains("密码太短"));
    let (liming, _) = session(&c, &s, "liming", "liming-password", "/ui/batches").await;
    let (status, _, _) = post_form(
        &c,
        &s,
        &admin,
        "/ui/users",
        &[
            ("csrf", &acsrf),
            ("action", "disable"),
            ("name", "zhangadmin"),
        ],
    )
    .await;
    assert_eq!(status, 422, "an admin cannot disable themselves");
    let (status, _, _) = post_form(
        &c,
        &s,
        &admin,
        "/ui/users",
        &[("csrf", &acsrf), ("action", "disable"), ("name", "liming")],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(
        get(&c, &s, &liming, "/ui/batches").await.0,
        303,
        "a disabled account's session ended"
    );
    // Its right password is told the account is disabled (a wrong one learns nothing).
    let (cookie, resp) = sign_in(&c, &s, "liming", "liming-password").await;
    assert!(cookie.is_none());
    assert_eq!(resp.status().as_u16(), 403);
    assert!(resp.text().await.unwrap().contains("此账户已停用"));
    let (_, resp) = sign_in(&c, &s, "liming", "wrong-password").await;
    assert_eq!(resp.status().as_u16(), 401);
    assert!(resp.text().await.unwrap().contains("用户名或密码错误"));
    let (status, _, _) = post_form(
        &c,
        &s,
        &admin,
        "/ui/users",
        &[("csrf", &acsrf), ("action", "enable"), ("name", "liming")],
    )
    .await;
    assert_eq!(status, 303);
    let (status, _, _) = post_form(
        &c,
        &s,
        &admin,
        "/ui/users",
        &[
            ("csrf", &acsrf),
            ("action", "passwd"),
            ("name", "liming"),
            ("password", "new-liming-pass"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(
        sign_in(&c, &s, "liming", "liming-password")
            .await
            .1
            .status()
            .as_u16(),
        401,
        "the old password no longer opens it"
    );
    assert_eq!(
        sign_in(&c, &s, "liming", "new-liming-pass")
            .await
            .1
            .status()
            .as_u16(),
        303
    );
    let (status, _, _) = post_form(
        &c,
        &s,
        &admin,
        "/ui/users",
        &[
            ("csrf", &acsrf),
            ("action", "access"),
            ("name", "liming"),
            ("role", "auditor"),
            ("regions", "4102,4103"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let (_, _, users) = get(&c, &s, &admin, "/ui/users").await;
    assert!(users.contains("4102,4103"), "{users}");
    // Every change is in the audit log as the admin's.
    let db = rusqlite::Connection::open(site.p("state/hedui.db")).unwrap();
    let actions: Vec<String> = db
        .prepare("SELECT json_extract(detail, '$.action') FROM audit WHERE actor = 'user:zhangadmin' AND kind = 'account' ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        actions,
        ["sign_in", "add", "disable", "enable", "passwd", "access"]
    );
    let n: i64 = db
        .query_row(
            "SELECT count(*) FROM audit WHERE actor = 'user:wangli' AND kind = 'acknowledge'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1);
    let logged: String = db
        .query_row(
            "SELECT detail FROM audit WHERE kind = 'acknowledge'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!logged.contains(&id), "{logged}");
}

/// POST the recipients page's upload form with `cookie`: status, Location, body.
async fn upload_list(
    c: &reqwest::Client,
    s: &Server,
    cookie: &str,
    fields: &[(&str, &str)],
    file: &[u8],
) -> (u16, String, String) {
    upload_named(c, s, cookie, fields, file, "在保名单.csv").await
}

async fn upload_named(
    c: &reqwest::Client,
    s: &Server,
    cookie: &str,
    fields: &[(&str, &str)],
    file: &[u8],
    name: &str,
) -> (u16, String, String) {
    let (ct, body) = form(fields, file, name);
    let resp = c
        .post(format!("{}/ui/recipients", s.url))
        .header("cookie", cookie)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    answer(resp).await
}

/// An admin replaces the recipients list on its page: without the CSRF token nothing
/// changes; a list with bad rows is refused whole, the rows told by number and nothing
/// replaced; a clean one becomes the current list, its households listed with masked ID
/// numbers and the change in the history; the "立即复核" button queues a reconciliation
/// of it once (a second press while it waits says so); staff have neither the page nor
/// the button.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_replaces_the_recipients_list_and_reconciles_now() {
    let site = Site::new();
    add_user(&site, "zhangadmin", "admin", "41,51,11", "admin-password-1");
    add_user(&site, "wangli", "staff", "4101", "clerk-password-1");
    // The reconciliation waits before it is done, so that a second press finds it.
    let s = site.serve_with("hedui.toml", &[("HEDUI_PAUSE_BEFORE_RUN_DONE_MS", "4000")]);
    let c = browser(&s);
    let (admin, csrf) = session(&c, &s, "zhangadmin", "admin-password-1", "/ui/recipients").await;
    let (_, _, empty) = get(&c, &s, &admin, "/ui/recipients").await;
    assert!(empty.contains("还没有在保名单"), "{empty}");
    assert!(
        empty.contains("href=\"/ui/recipients\""),
        "in the admin's menu"
    );

    // A file over the limit (max_body_mb = 1): a page that says so, not the API's JSON.
    let (status, _, big) =
        upload_list(&c, &s, &admin, &[("csrf", &csrf)], &vec![b'x'; 2 << 20]).await;
    assert_eq!(status, 413);
    assert!(big.contains("<html") && big.contains("MB 的上限"), "{big}");
    // Without the token: 403, nothing replaced.
    let clean = accepted_rows(&site, &["41", "51"]);
    let (status, _, body) = upload_list(&c, &s, &admin, &[], &clean).await;
    assert_eq!(status, 403, "{body}");
    let (_, _, still) = get(&c, &s, &admin, "/ui/recipients").await;
    assert!(still.contains("还没有在保名单"));

    // The city's applicants have rows a clerk got wrong: refused whole, by row.
    let raw = rows_of(&site, &["41", "51"]);
    let (status, _, refused) = upload_list(&c, &s, &admin, &[("csrf", &csrf)], &raw).await;
    assert_eq!(status, 422, "{refused}");
    assert!(refused.contains("名单未更换"), "{refused}");
    assert!(refused.contains("data-rejected-row="), "{refused}");
    for id in ids_of(&raw) {
        assert!(
            !refused.contains(&id),
            "no full ID number on the page: {id}"
        );
    }
    assert!(refused.contains("还没有在保名单"), "nothing replaced");

    // A clean list: the current one, a page of its households, masked.
    let (status, location, body) = upload_list(&c, &s, &admin, &[("csrf", &csrf)], &clean).await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/ui/recipients?done=replaced"),
        "{body}"
    );
    let (status, _, list) = get(&c, &s, &admin, &location).await;
    assert_eq!(status, 200);
    assert!(list.contains("已更换在保名单"), "{list}");
    assert!(list.contains("data-version=\"1\""), "{list}");
    assert!(list.contains("data-list-version=\"1\""), "in the history");
    assert!(list.contains("zhangadmin"), "who replaced it");
    let households = clean
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count()
        - 1;
    assert!(households > 0);
    assert!(list.matches("data-household-id=").count() > 3, "{list}");
    for id in ids_of(&clean) {
        assert!(!list.contains(&id), "no full ID number on the page: {id}");
    }
    assert!(list.contains("********"), "IDs masked");
    // An ID number typed into a name, or into the file's name, is masked there too.
    let text = encoding_rs::GBK.decode(&clean).0.into_owned();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut cells: Vec<String> = lines[1].split(',').map(str::to_owned).collect();
    let id = cells[5].clone();
    cells[6] = format!("{}{id}", cells[6]);
    lines[1] = cells.join(",");
    let typed = encoding_rs::GBK
        .encode(&(lines.join("\r\n") + "\r\n"))
        .0
        .into_owned();
    let (status, _, _) = upload_named(
        &c,
        &s,
        &admin,
        &[("csrf", &csrf)],
        &typed,
        &format!("名单{id}.csv"),
    )
    .await;
    assert_eq!(status, 303);
    let (_, _, list) = get(&c, &s, &admin, "/ui/recipients").await;
    assert!(list.contains("data-version=\"2\""), "{list}");
    assert!(
        !list.contains(&id),
        "no full ID number in a name or file name: {id}"
    );
    // A form opened before another admin's upload: refused, nothing replaced.
    let (status, _, stale) = upload_list(
        &c,
        &s,
        &admin,
        &[("csrf", &csrf), ("expected_version", "1")],
        &clean,
    )
    .await;
    assert_eq!(status, 409, "{stale}");
    assert!(
        stale.contains("已被更换") && stale.contains("data-version=\"2\""),
        "{stale}"
    );
    // A partial file (a few households of the list) would stop the night re-checking
    // the rest: refused until the removal is confirmed.
    let partial = first_lines(&clean, 4);
    let (status, _, asked) = replace_on_page(&c, &s, &admin, &csrf, "2", false, &partial).await;
    assert_eq!(status, 409, "{asked}");
    assert!(
        asked.contains("会从当前在保名单中移除") && asked.contains("data-version=\"2\""),
        "{asked}"
    );
    let (status, _, _) = replace_on_page(&c, &s, &admin, &csrf, "2", true, &partial).await;
    assert_eq!(status, 303);
    let (_, _, list) = get(&c, &s, &admin, "/ui/recipients").await;
    assert!(list.contains("data-version=\"3\""), "{list}");

    // Staff: no page, no button.
    let (wang, wang_csrf) =
        session(&c, &s, "wangli", "clerk-password-1", "/ui/reconciliations").await;
    let (status, _, _) = get(&c, &s, &wang, "/ui/recipients").await;
    assert_eq!(status, 403);
    let (_, _, runs) = get(&c, &s, &wang, "/ui/reconciliations").await;
    assert!(!runs.contains("立即复核"), "staff have no button");
    assert!(
        !runs.contains("href=\"/ui/recipients\""),
        "nor the menu item"
    );
    let (status, _, _) = post_form(
        &c,
        &s,
        &wang,
        "/ui/reconciliations",
        &[("csrf", &wang_csrf)],
    )
    .await;
    assert_eq!(status, 403);

    // 立即复核: queued once; pressed again while it waits or runs, said so.
    let (_, _, runs) = get(&c, &s, &admin, "/ui/reconciliations").await;
    assert!(runs.contains("立即复核"), "{runs}");
    let (status, _, _) = post_form(&c, &s, &admin, "/ui/reconciliations", &[]).await;
    assert_eq!(status, 403, "no token, no run");
    let (status, location, _) =
        post_form(&c, &s, &admin, "/ui/reconciliations", &[("csrf", &csrf)]).await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/ui/reconciliations?done=queued")
    );
    let (status, _, again) =
        post_form(&c, &s, &admin, "/ui/reconciliations", &[("csrf", &csrf)]).await;
    assert_eq!(status, 409, "{again}");
    assert!(again.contains("已有一次复核在排队或进行中"), "{again}");
    // It runs on the list just uploaded and is listed as done.
    let mut done = String::new();
    for _ in 0..120 {
        let (_, _, runs) = get(&c, &s, &admin, "/ui/reconciliations").await;
        if runs.contains("data-status=\"done\"") {
            done = runs;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert!(
        done.contains("data-run-id=\"1\""),
        "the run is done: {done}"
    );
    let (status, _, run) = get(&c, &s, &admin, "/ui/reconciliations/1").await;
    assert_eq!(status, 200);
    assert!(run.contains("这是首次复核"), "{run}");
}

/// Before the hub holds a list the night reads the config's: a first upload on the page
/// that would drop most of its households waits for 确认移除 too, and a refused upload
/// leaves no copy of its file in the state folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_upload_that_drops_most_of_the_configured_list_is_confirmed() {
    let site = Site::new();
    let whole = accepted_rows(&site, &["41", "51"]);
    std::fs::write(site.p("recipients.csv"), &whole).unwrap();
    site.config_variant(
        "listed.toml",
        "",
        "[schedule]\nreconcile = \"0 2 * * *\"\nrecipients = \"recipients.csv\"\n",
    );
    add_user(&site, "zhangadmin", "admin", "41,51,11", "admin-password-1");
    let s = site.serve_with("listed.toml", &[]);
    let c = browser(&s);
    let (admin, csrf) = session(&c, &s, "zhangadmin", "admin-password-1", "/ui/recipients").await;
    let (_, _, page) = get(&c, &s, &admin, "/ui/recipients").await;
    assert!(
        page.contains("recipients.csv") && page.contains("confirm_removal"),
        "{page}"
    );
    let partial = first_lines(&whole, 4);
    let (status, _, asked) = replace_on_page(&c, &s, &admin, &csrf, "0", false, &partial).await;
    assert_eq!(status, 409, "{asked}");
    assert!(asked.contains("会从当前在保名单中移除"), "{asked}");
    let kept = std::fs::read_dir(site.p("state/recipients"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(kept, 0, "a refused list leaves no file behind");
    // A tampered form (no number where the version goes) is refused, not read as none.
    let (status, _, _) = replace_on_page(&c, &s, &admin, &csrf, "abc", true, &partial).await;
    assert_eq!(status, 400);
    let (status, _, _) = replace_on_page(&c, &s, &admin, &csrf, "0", true, &partial).await;
    assert_eq!(status, 303);
    let (_, _, list) = get(&c, &s, &admin, "/ui/recipients").await;
    assert!(list.contains("data-version=\"1\""), "{list}");
}

/// The first `n` lines of `csv` (the header and a few households): a partial list.
fn first_lines(csv: &[u8], n: usize) -> Vec<u8> {
    csv.split_inclusive(|b| *b == b'\n')
        .take(n)
        .flatten()
        .copied()
        .collect()
}

/// The recipients page's form sent with `cookie` and `csrf`: `file`, the version the
/// page showed, and the 确认移除 box ticked or not. Status, Location, body.
async fn replace_on_page(
    c: &reqwest::Client,
    s: &Server,
    cookie: &str,
    csrf: &str,
    version: &str,
    confirm: bool,
    file: &[u8],
) -> (u16, String, String) {
    let mut fields = vec![("csrf", csrf), ("expected_version", version)];
    if confirm {
        fields.push(("confirm_removal", "1"));
    }
    upload_list(c, s, cookie, &fields, file).await
}
