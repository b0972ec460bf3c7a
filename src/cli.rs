//! Command-line arguments (SPEC §7), one variant per subcommand.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// hedui (核对): household economic-status verification across six departments.
#[derive(Debug, Parser)]
#[command(name = "hedui", version, about, long_about = None)]
pub struct Cli {
    /// Silence progress output.
    #[arg(long, global = true)]
    pub quiet: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Verify a batch of applicant households against the departments' records.
    Check(CheckArgs),
    /// Make a synthetic city: all department tables, an applicant batch and a policy.
    Generate(GenerateArgs),
    /// Generate a small city into ./demo, check it, and print the summary.
    Demo(DemoArgs),
    /// Pull the configured sources into the lake as new snapshots.
    Ingest(IngestArgs),
    /// Show each source's current snapshot, age, staleness and last failed pull.
    Sources(SourcesArgs),
    /// Re-check every current recipient household and write what changed since the
    /// previous completed run.
    Reconcile(ReconcileArgs),
    /// The audit log: `hedui audit verify`.
    Audit(AuditArgs),
    /// The HTTPS API for case-management systems, and the staff pages.
    Serve(ServeArgs),
    /// Staff accounts of the pages: `hedui user add|list|disable|enable|passwd`.
    User(UserArgs),
    /// Copy the state database, the audit key and anchor, the recipients lists, the
    /// jobs' files and the lake's snapshots into a new folder, while the server runs.
    Backup(BackupArgs),
    /// Put a backup in the places a config names (which must be empty), and verify it.
    Restore(RestoreArgs),
}

/// `hedui backup`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "示例 Example:\n  hedui backup --config /etc/hedui/hedui.toml --to /backup/hedui-$(date +%F)"
)]
pub struct BackupArgs {
    /// Deployment config: its `[state]` and `[lake]` are copied.
    #[arg(long)]
    pub config: PathBuf,
    /// A folder that does not exist yet (or is empty): the backup.
    #[arg(long)]
    pub to: PathBuf,
    /// Take the backup though the lake does not exist yet (a new installation that has
    /// pulled nothing); without it a missing lake (an unmounted volume) is an error.
    #[arg(long)]
    pub without_lake: bool,
}

/// `hedui restore`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "示例 Example:\n  hedui restore --from /backup/hedui-2026-12-01 --config /etc/hedui/hedui.toml"
)]
pub struct RestoreArgs {
    /// A folder `hedui backup` made.
    #[arg(long)]
    pub from: PathBuf,
    /// Deployment config: where the state, the audit key and anchor and the lake go
    /// (none of them may hold anything yet).
    #[arg(long)]
    pub config: PathBuf,
}

/// `hedui user`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "示例 Example:\n  printf '%s' \"$PASSWORD\" | hedui user add --config /etc/hedui/hedui.toml --name wangli --role staff --regions 4101,4102 --password-stdin"
)]
pub struct UserArgs {
    /// What to do with the accounts.
    #[command(subcommand)]
    pub command: UserCommand,
}

/// The `user` subcommands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add an account (its password read from standard input).
    Add(UserAddArgs),
    /// List the accounts (never their passwords).
    List(UserListArgs),
    /// Disable an account: it cannot sign in, and its sessions end.
    Disable(UserNameArgs),
    /// Enable a disabled account again.
    Enable(UserNameArgs),
    /// Set an account's password (read from standard input); clears a lock.
    Passwd(UserPasswdArgs),
}

/// `hedui user add`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "示例 Example:\n  printf '%s' \"$PASSWORD\" | hedui user add --config hedui.toml --name admin --role admin --regions 41 --password-stdin"
)]
pub struct UserAddArgs {
    /// Deployment config: its `[state] path` holds the accounts.
    #[arg(long)]
    pub config: PathBuf,
    /// The account's name (1–64 letters, digits, Chinese characters, . _ -).
    #[arg(long)]
    pub name: String,
    /// staff (工作人员), auditor (审计员) or admin (管理员).
    #[arg(long)]
    pub role: String,
    /// Region-code prefixes it may check and see, comma-separated (4101,4102).
    #[arg(long)]
    pub regions: String,
    /// Read the password from standard input (one line; never from the command line).
    #[arg(long, required = true)]
    pub password_stdin: bool,
}

/// `hedui user list`.
#[derive(Debug, clap::Args)]
#[command(after_help = "示例 Example:\n  hedui user list --config hedui.toml")]
pub struct UserListArgs {
    /// Deployment config: its `[state] path` holds the accounts.
    #[arg(long)]
    pub config: PathBuf,
}

/// `hedui user disable|enable NAME`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "示例 Examples:\n  hedui user disable --config hedui.toml wangli\n  hedui user enable --config hedui.toml wangli"
)]
pub struct UserNameArgs {
    /// Deployment config: its `[state] path` holds the accounts.
    #[arg(long)]
    pub config: PathBuf,
    /// The account.
    pub name: String,
}

/// `hedui user passwd NAME`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "示例 Example:\n  printf '%s' \"$PASSWORD\" | hedui user passwd --config hedui.toml wangli --password-stdin"
)]
pub struct UserPasswdArgs {
    /// Deployment config: its `[state] path` holds the accounts.
    #[arg(long)]
    pub config: PathBuf,
    /// The account.
    pub name: String,
    /// Read the new password from standard input (one line).
    #[arg(long, required = true)]
    pub password_stdin: bool,
}

/// `hedui serve`.
#[derive(Debug, clap::Args)]
#[command(after_help = "示例 Example:\n  hedui serve --config /etc/hedui/hedui.toml")]
pub struct ServeArgs {
    /// Deployment config with `[server]` and `[[token]]`.
    #[arg(long)]
    pub config: PathBuf,
}

/// `hedui audit`.
#[derive(Debug, clap::Args)]
#[command(after_help = "示例 Example:\n  hedui audit verify --config /etc/hedui/hedui.toml")]
pub struct AuditArgs {
    /// What to do with the audit log.
    #[command(subcommand)]
    pub command: AuditCommand,
}

/// The `audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the audit chain and name the first broken entry (exit 1 if any).
    Verify(AuditVerifyArgs),
}

/// `hedui audit verify`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "示例 Examples:\n  hedui audit verify --config /etc/hedui/hedui.toml\n  hedui audit verify --state /var/lib/hedui/state"
)]
pub struct AuditVerifyArgs {
    /// Deployment config: its `[state] path` holds the audit log.
    #[arg(long, required_unless_present = "state", conflicts_with = "state")]
    pub config: Option<PathBuf>,
    /// The state folder itself (as given to `reconcile --state`).
    #[arg(long)]
    pub state: Option<PathBuf>,
}

/// `hedui sources`.
#[derive(Debug, clap::Args)]
#[command(after_help = "示例 Example:\n  hedui sources --config /etc/hedui/hedui.toml")]
pub struct SourcesArgs {
    /// Deployment config (TOML).
    #[arg(long)]
    pub config: PathBuf,
    /// Count ages to this date, YYYY-MM-DD (default: today).
    #[arg(long)]
    pub as_of: Option<String>,
}

/// `hedui ingest`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "示例 Examples:\n  hedui ingest --config /etc/hedui/hedui.toml\n  hedui ingest --config /etc/hedui/hedui.toml --source hr --source bank"
)]
pub struct IngestArgs {
    /// Deployment config (TOML).
    #[arg(long)]
    pub config: PathBuf,
    /// Only these sources (hr, housing, police, tax, bank, fund); default: all.
    #[arg(long = "source")]
    pub sources: Vec<String>,
}

/// Where the departments' data comes from (`check`, `reconcile`): exactly one of
/// `--sources`, `--lake` and `--config` (each command declares the group).
#[derive(Debug, clap::Args)]
pub struct DataArgs {
    /// Folder with one entry per canonical table (TABLE.csv|.parquet|.jsonl or TABLE/).
    #[arg(long)]
    pub sources: Option<PathBuf>,
    /// Lake made by `hedui ingest`: a local path, file:///path or s3://bucket/prefix.
    #[arg(long)]
    pub lake: Option<String>,
    /// Deployment config: read its lake, and ask its lookup-mode sources for
    /// the batch's members.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Read the lake as committed at this time (RFC 3339, e.g. 2026-11-22T18:00:00+08:00);
    /// lookup-mode sources are then not asked again.
    #[arg(long)]
    pub snapshot_at: Option<String>,
    /// Memory DataFusion's operators may use before spilling to the temporary folder,
    /// e.g. 4GiB or 512MiB (default: the --config's [engine] memory_limit, or half of
    /// this machine's memory).
    #[arg(long, value_name = "SIZE")]
    pub memory_limit: Option<String>,
    /// Run the rules on an Apache Ballista cluster: its scheduler, df://HOST:PORT
    /// (default: the --config's [engine] url, or this process). The executors read the
    /// lake themselves: it must be where they can reach it.
    #[arg(long, value_name = "df://HOST:PORT")]
    pub engine: Option<String>,
}

/// The note of the commands that read the departments' data.
macro_rules! data_help {
    () => {
        "One of --sources DIR, --lake URL or --config FILE is required: where the departments' data is.\n必须给出 --sources、--lake 或 --config 之一：部门数据所在的位置。"
    };
}

/// `hedui check`: exactly one of `--sources`, `--lake` or `--config` says where the
/// departments' data is.
#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("data")
        .required(true)
        .multiple(false)
        .args(["sources", "lake", "config"])
))]
#[command(after_help = concat!(
    "示例 Examples:\n",
    "  hedui check --applicants 申请名单.csv --sources /data/2026-11 --policy policy.toml --out results/\n",
    "  hedui check --applicants 申请名单.xlsx --config /etc/hedui/hedui.toml --policy policy.toml --as-of 2026-11-22 --out results/\n\n",
    data_help!()
))]
pub struct CheckArgs {
    /// Applicant batch: CSV (UTF-8 or GBK), XLSX (first sheet) or JSON Lines.
    #[arg(long)]
    pub applicants: PathBuf,
    /// Where the departments' data is.
    #[command(flatten)]
    pub data: DataArgs,
    /// Policy file (TOML).
    #[arg(long)]
    pub policy: PathBuf,
    /// Check date D, YYYY-MM-DD (default: today).
    #[arg(long)]
    pub as_of: Option<String>,
    /// Output folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Do not record this check in an audit log (trials on made-up data only). Without
    /// it, a check is audited in the deployment's state folder (`--config`), the folder
    /// HEDUI_STATE names, or the user's own ($XDG_DATA_HOME/hedui, else
    /// ~/.local/share/hedui).
    #[arg(long)]
    pub no_audit: bool,
}

/// `hedui reconcile`: re-check every current recipient household and say what
/// changed since the previous completed run kept in `--state`.
#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("data")
        .required(true)
        .multiple(false)
        .args(["sources", "lake", "config"])
))]
#[command(after_help = concat!(
    "示例 Example:\n",
    "  hedui reconcile --recipients 在保名单.csv --lake /var/lib/hedui/lake --policy policy.toml --state /var/lib/hedui/state --out recon/\n\n",
    data_help!()
))]
pub struct ReconcileArgs {
    /// The current recipients: the same file formats as an applicant batch.
    #[arg(long)]
    pub recipients: PathBuf,
    /// Where the departments' data is.
    #[command(flatten)]
    pub data: DataArgs,
    /// Policy file (TOML).
    #[arg(long)]
    pub policy: PathBuf,
    /// State folder: the runs, and what the last completed one found (created if missing).
    #[arg(long)]
    pub state: PathBuf,
    /// Check date D, YYYY-MM-DD (default: today).
    #[arg(long)]
    pub as_of: Option<String>,
    /// Output folder: what `check` writes, plus changes.jsonl.
    #[arg(long)]
    pub out: PathBuf,
}

/// File format of generated source tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceFormat {
    /// CSV, UTF-8 with a header row.
    Csv,
    /// Parquet with decimals and dates.
    Parquet,
    /// JSON Lines.
    Jsonl,
}

/// `hedui generate`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "示例 Example:\n  hedui generate --people 1000000 --households 100000 --format parquet --seed 1 --out city/"
)]
pub struct GenerateArgs {
    /// People living in the city (rows of `residents`).
    #[arg(long, default_value_t = 20_000)]
    pub people: u64,
    /// Applicant households in the batch.
    #[arg(long, default_value_t = 2_000)]
    pub households: u64,
    /// Output folder: sources/, applicants.csv, policy.toml are written into it.
    #[arg(long)]
    pub out: PathBuf,
    /// Format of the source tables.
    #[arg(long, value_enum, default_value_t = SourceFormat::Csv)]
    pub format: SourceFormat,
    /// Random seed: the same seed makes the same city.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
    /// Check date the data is made for, YYYY-MM-DD (default: today).
    #[arg(long)]
    pub as_of: Option<String>,
}

/// `hedui demo`.
#[derive(Debug, clap::Args)]
#[command(after_help = "示例 Example:\n  hedui demo --dir demo --people 20000 --households 2000")]
pub struct DemoArgs {
    /// Folder for the demo city and its results.
    #[arg(long, default_value = "demo")]
    pub dir: PathBuf,
    /// People in the demo city.
    #[arg(long, default_value_t = 20_000)]
    pub people: u64,
    /// Applicant households.
    #[arg(long, default_value_t = 2_000)]
    pub households: u64,
}
