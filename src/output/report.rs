//! `report.html`: a self-contained, printable Chinese report for verification-centre
//! staff — totals, an inline SVG chart of verdicts by region and aid type, and one
//! section per household with each finding in words and its evidence. ID numbers are
//! masked. Rendered with the `templates/report.html` template.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use hedui_connectors::idnum::mask_id;
use minijinja::{context, Environment};
use serde::Serialize;
use serde_json::Value;

use super::files::{write_atomic, OutputError, Staged};
use super::gathered::{Gathered, REPORT_HOUSEHOLDS};
use super::summary::{Summary, VERDICTS};
use crate::applicants::Household;
use crate::changes::Change;
use crate::policy::{AidType, AreaType};
use crate::verdict::CheckRun;
use crate::verdict::{Flag, HouseholdResult, Rule};

const TEMPLATE: &str = include_str!("templates/report.html");

/// Evidence records printed per finding; the rest are counted (a year of monthly wage
/// records would otherwise fill pages). `results.jsonl` always carries all of them.
const EVIDENCE_SHOWN: usize = 8;

/// Verdict colours shared by the chart and the badges.
const COLOURS: [&str; 4] = ["#2e7d32", "#f9a825", "#757575", "#c62828"];

pub fn verdict_zh(v: &str) -> &'static str {
    match v {
        "eligible" => "符合条件",
        "review" => "需人工复核",
        "incomplete" => "数据不全",
        "ineligible" => "不符合条件",
        crate::changes::REJECTED => "名单行有误，未核对",
        _ => "未知",
    }
}

use super::labels::{money, table_zh};

pub fn source_zh(s: &str) -> &'static str {
    match s {
        "hr" => "人社",
        "housing" => "不动产",
        "police" => "公安",
        "tax" => "税务",
        "bank" => "金融",
        "fund" => "公积金",
        _ => "其他",
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A rule's name in a few words (for findings no longer raised).
fn rule_zh(rule: &str) -> &str {
    match Rule::from_code(rule) {
        Some(r) => r.name_zh(),
        None => rule,
    }
}

/// A finding in words.
fn finding_zh(f: &Flag, who: &str) -> String {
    let (v, l) = (money(&text(&f.value)), money(&text(&f.limit)));
    match Rule::from_code(&f.rule) {
        Some(rule) => rule.finding_zh(&v, &l, who),
        None => format!("{}: {v} / {l}", f.rule),
    }
}

#[derive(Serialize)]
struct EvidenceView {
    table: &'static str,
    place: String,
    fields: String,
}

#[derive(Serialize)]
struct FlagView {
    text: String,
    severity: &'static str,
    disqualifying: bool,
    evidence: Vec<EvidenceView>,
    /// Evidence records not printed (all of them are in `results.jsonl`).
    more_evidence: usize,
}

#[derive(Serialize)]
struct MemberView {
    name: String,
    id: String,
    relation: &'static str,
}

#[derive(Serialize)]
struct HouseholdView {
    id: String,
    region: String,
    area: &'static str,
    aid: &'static str,
    verdict: String,
    verdict_zh: &'static str,
    colour: &'static str,
    members: Vec<MemberView>,
    income: String,
    assets: String,
    standard: String,
    flags: Vec<FlagView>,
    missing: String,
}

#[derive(Serialize)]
struct Bar {
    label: String,
    y: usize,
    total: u64,
    segments: Vec<(usize, usize, &'static str, u64)>,
}

fn evidence_view(e: &crate::verdict::Evidence) -> EvidenceView {
    EvidenceView {
        table: table_zh(&e.table),
        place: format!("{} 第{}行", e.file, e.row),
        // The report is for staff: ID and account numbers masked.
        fields: super::labels::record_zh(&e.table, &e.record.fields(), false),
    }
}

fn region_label(labels: &BTreeMap<String, String>, code: &str) -> String {
    labels.get(code).cloned().unwrap_or_else(|| code.to_owned())
}

fn flag_view(f: &Flag, who: &str) -> FlagView {
    FlagView {
        text: finding_zh(f, who),
        severity: if f.severity == "disqualifying" {
            "否决项"
        } else {
            "复核项"
        },
        disqualifying: f.severity == "disqualifying",
        evidence: f
            .evidence
            .iter()
            .take(EVIDENCE_SHOWN)
            .map(evidence_view)
            .collect(),
        more_evidence: f.evidence.len().saturating_sub(EVIDENCE_SHOWN),
    }
}

/// How a member is named in findings: `张三（410184********123X）`.
fn member_label(declared: Option<&Household>, id: &Option<String>) -> String {
    let Some(id) = id else {
        return String::new();
    };
    let name = declared
        .and_then(|h| h.members.iter().find(|m| &m.id_number == id))
        .map(|m| m.name.clone())
        .unwrap_or_default();
    format!("{name}（{}）", mask_id(id))
}

/// A rejected row as the report prints it: where, whose, which field, why.
#[derive(Serialize)]
struct RejectionView {
    household_id: String,
    row: u64,
    name: String,
    field: &'static str,
    reason: &'static str,
    message: String,
}

#[derive(Serialize)]
struct ChangeView {
    id: String,
    region: String,
    before: &'static str,
    after: &'static str,
    colour: &'static str,
    added: Vec<FlagView>,
    removed: Vec<String>,
}

/// The changes of a reconciliation as the report lists them (see [`Gathered`]).
fn change_views(
    ordered: Vec<&Change>,
    run: &CheckRun,
    declared: &HashMap<&str, &Household>,
) -> Vec<ChangeView> {
    ordered
        .into_iter()
        .map(|c| {
            let h = declared.get(c.household_id.as_str()).copied();
            // An added flag is one of the household's flags now, severity and all.
            let added = c
                .added_flags
                .iter()
                .map(|a| flag_view(a, &member_label(h, &a.member)))
                .collect();
            let removed = c
                .removed_flags
                .iter()
                .map(|f| {
                    let who = member_label(h, &f.member);
                    if who.is_empty() {
                        rule_zh(&f.rule).to_owned()
                    } else {
                        format!("成员{who}：{}", rule_zh(&f.rule))
                    }
                })
                .collect();
            let after = c.verdict.as_deref();
            let vi = after
                .and_then(|v| VERDICTS.iter().position(|x| *x == v))
                .unwrap_or(2);
            ChangeView {
                id: c.household_id.clone(),
                // A household still on the list is named as the report names its
                // region; one that left it by its code.
                region: match c.verdict {
                    Some(_) => region_label(&run.region_labels, &c.region_code),
                    None => c.region_code.clone(),
                },
                before: c
                    .previous_verdict
                    .as_deref()
                    .map_or("新列入名单", verdict_zh),
                after: after.map_or("已不在名单中", verdict_zh),
                colour: COLOURS[vi],
                added,
                removed,
            }
        })
        .collect()
}

fn household_view(
    r: &HouseholdResult,
    declared: Option<&Household>,
    labels: &BTreeMap<String, String>,
) -> HouseholdView {
    let members: Vec<MemberView> = declared
        .map(|h| {
            h.members
                .iter()
                .map(|m| MemberView {
                    name: m.name.clone(),
                    id: mask_id(&m.id_number),
                    relation: m.relation.chinese(),
                })
                .collect()
        })
        .unwrap_or_default();
    let who = |id: &Option<String>| member_label(declared, id);
    let vi = VERDICTS.iter().position(|v| *v == r.verdict).unwrap_or(0);
    HouseholdView {
        id: r.household_id.clone(),
        region: region_label(labels, &r.region_code),
        area: AreaType::parse(&r.area_type).map_or("", AreaType::chinese),
        aid: AidType::parse(&r.aid_type).map_or("", AidType::chinese),
        verdict: r.verdict.clone(),
        verdict_zh: verdict_zh(&r.verdict),
        colour: COLOURS[vi],
        members,
        income: money(&r.per_capita_monthly_income),
        assets: money(&r.financial_assets),
        standard: money(&r.standard_monthly),
        flags: r
            .flags
            .iter()
            .map(|f| flag_view(f, &who(&f.member)))
            .collect(),
        missing: r
            .missing_sources
            .iter()
            .map(|s| source_zh(s))
            .collect::<Vec<_>>()
            .join("、"),
    }
}

/// Bars of the chart: verdict counts per (region, aid type), the 30 largest groups.
fn bars(
    counted: &BTreeMap<(String, String), [u64; 4]>,
    labels: &BTreeMap<String, String>,
) -> Vec<Bar> {
    let mut groups: BTreeMap<(String, String), [u64; 4]> = BTreeMap::new();
    for ((region, aid), counts) in counted {
        let aid = AidType::parse(aid).map_or("", AidType::chinese).to_owned();
        let c = groups.entry((region.clone(), aid)).or_default();
        for (sum, n) in c.iter_mut().zip(counts) {
            *sum += n;
        }
    }
    let mut groups: Vec<((String, String), [u64; 4])> = groups.into_iter().collect();
    groups.sort_by(|a, b| {
        b.1.iter()
            .sum::<u64>()
            .cmp(&a.1.iter().sum::<u64>())
            .then(a.0.cmp(&b.0))
    });
    groups.truncate(30);
    let max = groups
        .iter()
        .map(|g| g.1.iter().sum::<u64>())
        .max()
        .unwrap_or(1)
        .max(1);
    const WIDTH: u64 = 560;
    groups
        .into_iter()
        .enumerate()
        .map(|(i, ((region, aid), counts))| {
            let mut x = 0u64;
            let segments = counts
                .iter()
                .enumerate()
                .filter(|(_, c)| **c > 0)
                .map(|(v, c)| {
                    let w = (c * WIDTH / max).max(1);
                    let seg = (x as usize, w as usize, COLOURS[v], *c);
                    x += w;
                    seg
                })
                .collect();
            Bar {
                label: format!("{} {aid}", region_label(labels, &region)),
                y: i * 22,
                total: counts.iter().sum(),
                segments,
            }
        })
        .collect()
}

/// Chinese numerals of the report's sections, in order.
const SECTION_NUMERALS: [&str; 8] = ["一", "二", "三", "四", "五", "六", "七", "八"];

/// A reconciliation run's changes against its previous completed run, which its report
/// leads with.
#[derive(Debug, Clone, Copy)]
pub struct Compared {
    /// This run.
    pub run_id: i64,
    /// The run compared with, if any.
    pub previous: Option<i64>,
}

/// Where a run comes from, as the report's first page says it.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The server's batch (job) it is, if any.
    pub batch: Option<&'a str>,
    /// Who ran it (`user:NAME`, `token:NAME`, `os:USER`, `schedule`).
    pub actor: &'a str,
    /// The night's pulls before a scheduled reconciliation, if any.
    pub pulls: Option<&'a NightPulls>,
}

/// The night's pulls a scheduled reconciliation followed: when they ended, which sources
/// they refreshed and which failed (those keep their previous snapshot).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct NightPulls {
    /// When the pulls ended (RFC 3339).
    pub at: String,
    /// Sources with a new snapshot.
    pub refreshed: Vec<String>,
    /// Sources whose pull failed.
    pub failed: Vec<String>,
}

/// Each source's snapshot as the report names it: `2026-12-03 01:00 拉取（第 3 版）`, or
/// the folder read directly.
fn snapshots_zh(run: &CheckRun) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for t in &run.tables {
        let said = match (&t.pulled_at, t.snapshot) {
            (Some(at), Some(seq)) => {
                format!("{} 拉取（第 {seq} 版）", super::labels::local_time(at))
            }
            (None, Some(seq)) => format!("第 {seq} 版"),
            _ if t.present => "直接读取文件".to_owned(),
            _ => "—".to_owned(),
        };
        out.entry(t.source.clone()).or_insert(said);
    }
    out
}

/// The template environment of the report: every value printed is masked where it
/// holds an ID number (or an 18-digit account number), whatever field a clerk typed it
/// into — the report is for staff.
fn environment() -> Result<Environment<'static>, OutputError> {
    let mut env = Environment::new();
    env.set_formatter(|out, state, value| match value.as_str() {
        Some(text) => {
            let masked = hedui_connectors::idnum::mask_ids_in(text);
            let shown = if value.is_safe() {
                minijinja::Value::from_safe_string(masked.into_owned())
            } else {
                minijinja::Value::from(masked.into_owned())
            };
            minijinja::escape_formatter(out, state, &shown)
        }
        None => minijinja::escape_formatter(out, state, value),
    });
    env.add_template("report.html", TEMPLATE)
        .map_err(|e| OutputError::Template(e.to_string()))?;
    Ok(env)
}

/// The rejected rows the report prints (the first [`REPORT_HOUSEHOLDS`]), in words.
fn rejection_views(run: &CheckRun) -> Vec<RejectionView> {
    run.batch
        .rejections
        .iter()
        .take(REPORT_HOUSEHOLDS)
        .map(|r| RejectionView {
            household_id: r.household_id.clone(),
            row: r.row,
            name: run
                .batch
                .rejected_names
                .get(&r.row)
                .cloned()
                .unwrap_or_default(),
            field: crate::applicants::Column::ALL
                .iter()
                .find(|c| c.name() == r.field)
                .map_or(r.field, |c| c.chinese()),
            reason: crate::applicants::Reason::zh(r.reason.code()),
            message: r.message.clone(),
        })
        .collect()
}

/// Writes `report.html` into `dir`, to be published; a reconciliation's report leads
/// with its changes.
pub fn write(
    dir: &Path,
    run: &CheckRun,
    summary: &Summary,
    gathered: &Gathered,
    compared: Option<&Compared>,
    origin: &Origin<'_>,
) -> Result<Staged, OutputError> {
    let tmpl_env = environment()?;
    let tmpl = tmpl_env
        .get_template("report.html")
        .map_err(|e| OutputError::Template(e.to_string()))?;
    let bars = bars(gathered.groups(), &run.region_labels);
    let legend: Vec<(&str, &str)> = VERDICTS
        .iter()
        .zip(COLOURS)
        .map(|(v, c)| (verdict_zh(v), c))
        .collect();
    let verdict_counts: Vec<(&str, u64, &str)> = VERDICTS
        .iter()
        .zip(COLOURS)
        .map(|(v, c)| {
            (
                verdict_zh(v),
                summary.verdicts.get(*v).copied().unwrap_or(0),
                c,
            )
        })
        .collect();
    let snapshots = snapshots_zh(run);
    let sources: Vec<(String, &str, usize, usize, String, String)> = summary
        .sources
        .iter()
        .map(|(name, s)| {
            (
                format!("{}（{name}）", source_zh(name)),
                match s.status {
                    "missing" => "缺失",
                    "stale" => "数据过期",
                    _ => "已接入",
                },
                s.rows,
                s.problems,
                s.latest_as_of.clone().unwrap_or_else(|| "—".into()),
                snapshots.get(name).cloned().unwrap_or_else(|| "—".into()),
            )
        })
        .collect();
    let rejections = rejection_views(run);
    let declared: HashMap<&str, &Household> = run
        .batch
        .households
        .iter()
        .map(|h| (h.household_id.as_str(), h))
        .collect();
    let (shown, need_person) = gathered.detailed();
    let households: Vec<HouseholdView> = shown
        .into_iter()
        .map(|r| {
            household_view(
                r,
                declared.get(r.household_id.as_str()).copied(),
                &run.region_labels,
            )
        })
        .collect();
    let changes = compared.map(|_| change_views(gathered.listed_changes(), run, &declared));
    let changes_total = gathered.changes_total();
    let mut sections: Vec<&str> = Vec::new();
    if compared.is_some() {
        sections.push("changes");
    }
    sections.extend(["overview", "chart", "sources"]);
    if !rejections.is_empty() {
        sections.push("rejections");
    }
    sections.push("households");
    let sec: BTreeMap<&str, &str> = sections.into_iter().zip(SECTION_NUMERALS).collect();
    let [shown_ineligible, shown_review, shown_incomplete] = gathered.shown_of_each();
    let [ineligible, review, incomplete] = gathered.needing_counts();
    let ctx = context! {
        sec,
        batch => origin.batch,
        pulls => origin.pulls.map(|p| context! {
            at => super::labels::local_time(&p.at),
            refreshed => p.refreshed.iter().map(|s| source_zh(s)).collect::<Vec<_>>().join("、"),
            failed => p.failed.iter().map(|s| source_zh(s)).collect::<Vec<_>>().join("、"),
        }),
        submitter => super::labels::submitter(origin.actor),
        checked_at => super::labels::local_time(&run.checked_at.to_rfc3339()),
        snapshots => summary.sources.keys().map(|name| (source_zh(name), snapshots.get(name).cloned().unwrap_or_else(|| "—".into()))).collect::<Vec<_>>(),
        capped => gathered.total() > REPORT_HOUSEHOLDS,
        shown => context! {
            ineligible => shown_ineligible, review => shown_review, incomplete => shown_incomplete,
        },
        needing => context! { ineligible, review, incomplete },
        reconciliation => compared.map(|c| context! { run_id => c.run_id, previous => c.previous }),
        changes,
        as_of => summary.as_of,
        applicants => summary.applicants.file,
        rows_read => summary.applicants.rows_read,
        accepted => summary.applicants.households_accepted,
        rejected => summary.applicants.households_rejected,
        problems => summary.data_quality_problems,
        verdict_counts,
        legend,
        bars,
        chart_height => gathered.chart_height(),
        sources,
        missing => run.missing_sources.iter().map(|s| source_zh(s)).collect::<Vec<_>>().join("、"),
        stale => run.stale_sources.iter().map(|s| source_zh(s)).collect::<Vec<_>>().join("、"),
        rejections_total => run.batch.rejections.len(),
        rejections,
        households_total => gathered.total(),
        need_person,
        cap => REPORT_HOUSEHOLDS,
        households,
        changes_total,
    };
    write_atomic(dir, "report.html", |w| {
        tmpl.render_captured_to(ctx, w)
            .map(|_| ())
            .map_err(|e| std::io::Error::other(e.to_string()))
    })
}
