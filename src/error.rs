//! The one error type at the edge of the library, and its exit status (SPEC §7:
//! 2 for unusable input or arguments, 1 for internal faults).

use crate::applicants::ApplicantsError;
use crate::engine::EngineError;
use crate::policy::PolicyError;
use hedui_connectors::ConnectorError;

/// Anything that stops a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad arguments.
    #[error("{0}")]
    Usage(String),
    /// Bad policy file.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// Unreadable applicant batch.
    #[error(transparent)]
    Applicants(#[from] ApplicantsError),
    /// Unusable source delivery.
    #[error(transparent)]
    Source(#[from] ConnectorError),
    /// Engine failure.
    #[error(transparent)]
    Engine(EngineError),
    /// Bad deployment config.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The lake failed.
    #[error(transparent)]
    Lake(#[from] crate::lake::LakeError),
    /// The state database failed.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// The cluster engine (`--engine df://…`) cannot be used.
    #[error(transparent)]
    Cluster(#[from] crate::engine::ClusterError),
    /// `--engine` or `[engine] url` is not a scheduler's address.
    #[error(transparent)]
    ClusterUrl(#[from] crate::config::cluster::BadClusterUrl),
    /// The audit chain does not verify.
    #[error("audit log {path}: entry {seq} is broken: {why}")]
    AuditBroken {
        /// The database.
        path: String,
        /// The first broken entry.
        seq: i64,
        /// What is wrong with it.
        why: String,
    },
    /// Cannot write outputs.
    #[error("cannot write {path}: {source}")]
    Output {
        /// the file
        path: String,
        /// the cause
        source: std::io::Error,
    },
    /// The temporary folder a large run keeps its results in (`TMPDIR`) is missing,
    /// not writable or full.
    #[error("cannot use the temporary folder {path} (TMPDIR): {source}")]
    TempFolder {
        /// The folder or the file in it.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The user interrupted the run (Ctrl-C, SIGTERM).
    #[error("interrupted (Ctrl-C or SIGTERM): nothing was published or audited")]
    Interrupted,
    /// Any other internal fault.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Which disk is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskFull {
    /// The state folder's: the database, the jobs' files, uploads.
    State,
    /// The temporary folder's (`TMPDIR`), where large runs spill.
    Temp,
}

impl Error {
    /// Whether it failed for a full disk: the state database's (SQLITE_FULL) or a file
    /// being written (ENOSPC, EDQUOT). `None` if not; else whether the disk is the
    /// temporary folder's (rather than the state's or the outputs').
    pub fn disk_full(&self) -> Option<DiskFull> {
        let full = |e: &std::io::Error| {
            matches!(
                e.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            )
        };
        match self {
            Error::State(s) if s.disk_full() => Some(DiskFull::State),
            Error::Output { source, .. } if full(source) => Some(DiskFull::State),
            Error::TempFolder { source, .. } if full(source) => Some(DiskFull::Temp),
            _ => None,
        }
    }

    /// The message for people: the Chinese headline, then the details, ID numbers
    /// masked. The one form every edge (terminal, job record) shows.
    pub fn user_message(&self) -> String {
        format!(
            "{}：{}",
            self.chinese(),
            hedui_connectors::idnum::mask_ids_in(&self.to_string())
        )
    }

    /// A Chinese headline for the message printed to staff (the details that follow
    /// are in English where the cause is technical).
    pub fn chinese(&self) -> &'static str {
        match self {
            Error::Usage(_) => "命令参数有误",
            Error::Policy(_) => "政策文件有误",
            Error::Applicants(_) => "申请名单无法使用",
            Error::Source(ConnectorError::Http { .. } | ConnectorError::Store { .. }) => {
                "部门接口调用失败"
            }
            Error::Source(_) => "部门数据无法读取",
            Error::Engine(e) if e.out_of_memory() => {
                "内存上限不足，请调高内存上限（--memory-limit 或配置中的 [engine] memory_limit）或分批核对"
            }
            Error::Engine(_) => "核对引擎内部错误",
            Error::Config(_) => "部署配置有误",
            Error::Lake(crate::lake::LakeError::NotFound { .. }) => "找不到数据湖",
            Error::Lake(crate::lake::LakeError::NewerFormat { .. }) => {
                "数据湖中的快照由更新版本的 hedui 写成，本版本不认识其格式：请使用写入它的版本或更新的版本"
            }
            Error::Lake(_) => "数据湖出错",
            Error::Output { .. } => "无法写入结果",
            Error::TempFolder { .. } => {
                "临时文件夹不可用，请确认 TMPDIR 所指的文件夹存在、可写且有足够空间"
            }
            Error::State(crate::state::StateError::ChangesFile { .. }) => {
                "对账变更文件与本次对账不符（是否有另一次对账同时写入同一输出文件夹？），请换一个输出文件夹重新对账"
            }
            Error::State(crate::state::StateError::RunNotRunning { .. }) => {
                "这次对账已被中止或标记为失败，不能再完成；请重新运行对账"
            }
            Error::State(crate::state::StateError::AuditKeyMissing { .. }) => {
                "审计密钥缺失，不能记录审计日志：请从备份恢复审计密钥（不会另建新密钥）"
            }
            Error::State(
                crate::state::StateError::AccountExists { .. }
                | crate::state::StateError::NoAccount { .. },
            ) => "账户操作未完成",
            Error::State(crate::state::StateError::AuditEnd { .. }) => {
                "审计日志的末尾与其锚点不符，可能被删改：请从备份恢复后再运行"
            }
            Error::State(crate::state::StateError::Newer { .. }) => {
                "状态数据库由更新版本的 hedui 写成，本版本不认识其结构：请使用写入它的版本或更新的版本（不会降级改写数据库）"
            }
            Error::State(_) => "状态数据库出错",
            Error::AuditBroken { .. } => "审计日志被篡改",
            Error::Internal(_) => "内部错误",
            Error::Interrupted => "已中断：本次运行没有写出结果，也没有记入审计日志",
            Error::ClusterUrl(_) => "计算集群地址有误",
            Error::Cluster(_) => "计算集群不可用",
        }
    }

    /// Exit status for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            // As a shell reports a run stopped by Ctrl-C.
            Error::Interrupted => 130,
            // A department that failed (after its retries) is not bad input.
            Error::Source(
                ConnectorError::Arrow { .. }
                | ConnectorError::Http { .. }
                | ConnectorError::Store { .. }
                | ConnectorError::CannotResume { .. }
                | ConnectorError::EmptyDelivery { .. },
            ) => 1,
            // A read-only command pointed at a place without a lake: the user's mistake.
            Error::Lake(
                crate::lake::LakeError::NotFound { .. }
                | crate::lake::LakeError::Refused { .. }
                | crate::lake::LakeError::NewerFormat { .. },
            ) => 2,
            Error::Usage(_)
            | Error::Policy(_)
            | Error::Applicants(_)
            | Error::Source(_)
            | Error::Config(_)
            | Error::ClusterUrl(_) => 2,
            // A place the user named that cannot be written (no such folder, a file where
            // a folder should be, no permission) is the user's to fix; a disk that fails
            // or fills up is a fault.
            Error::Output { source, .. } | Error::TempFolder { source, .. }
                if user_fixable(source) =>
            {
                2
            }
            // A lake the user may not read (credentials, permissions) likewise.
            Error::Lake(crate::lake::LakeError::Store {
                source:
                    datafusion::object_store::Error::PermissionDenied { .. }
                    | datafusion::object_store::Error::Unauthenticated { .. },
                ..
            }) => 2,
            // A --state folder that cannot be opened is the user's to fix.
            Error::State(
                crate::state::StateError::Open { .. } | crate::state::StateError::Newer { .. },
            ) => 2,
            // An account name taken, or none of that name: the user's to fix.
            Error::State(
                crate::state::StateError::AccountExists { .. }
                | crate::state::StateError::NoAccount { .. },
            ) => 2,
            Error::Engine(_)
            | Error::AuditBroken { .. }
            | Error::Output { .. }
            | Error::TempFolder { .. }
            | Error::Internal(_)
            | Error::Lake(_)
            | Error::State(_)
            | Error::Cluster(_) => 1,
        }
    }
}

impl From<EngineError> for Error {
    fn from(e: EngineError) -> Error {
        match e {
            // The cluster's own headline and exit status.
            EngineError::Cluster(c) => Error::Cluster(c),
            e => Error::Engine(e),
        }
    }
}

impl From<crate::sources::SourcesError> for Error {
    fn from(e: crate::sources::SourcesError) -> Error {
        use crate::sources::SourcesError as S;
        match e {
            S::Source(e) => Error::Source(e),
            S::Lake(e) => Error::Lake(e),
            e @ S::NoTables { .. } => Error::Usage(e.to_string()),
            S::Query { what, source } => Error::Engine(EngineError::DataFusion { what, source }),
        }
    }
}

impl From<crate::output::OutputError> for Error {
    fn from(e: crate::output::OutputError) -> Error {
        use crate::output::OutputError as O;
        match e {
            O::Write { path, source } => Error::Output { path, source },
            e @ O::Busy { .. } => Error::Usage(e.to_string()),
            e @ (O::Template(_) | O::Panicked) => Error::Internal(e.to_string()),
        }
    }
}

impl From<crate::verdict::SpillError> for Error {
    fn from(e: crate::verdict::SpillError) -> Error {
        use crate::verdict::SpillError as S;
        match e {
            // The temporary folder (TMPDIR) full or not writable.
            S::Io { path, source } => Error::TempFolder { path, source },
            e @ (S::Arrow(_) | S::Record { .. }) => Error::Internal(e.to_string()),
        }
    }
}

impl From<crate::ingest::IngestError> for Error {
    fn from(e: crate::ingest::IngestError) -> Error {
        use crate::ingest::IngestError as I;
        match e {
            I::Unusable(why) => Error::Usage(why),
            I::Source(e) => Error::Source(e),
            I::Lake(e) => Error::Lake(e),
            I::Disk { path, source } => Error::Output { path, source },
            e @ I::OutOfTime { .. } => Error::Usage(e.to_string()),
        }
    }
}

/// Whether an I/O failure on a path the user gave is theirs to fix.
fn user_fixable(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::PermissionDenied
            | K::NotFound
            | K::AlreadyExists
            | K::NotADirectory
            | K::IsADirectory
            | K::ReadOnlyFilesystem
            | K::InvalidFilename
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An engine stopped by its memory limit says so, and how to go on.
    #[test]
    fn out_of_memory_names_the_limit() {
        let e = Error::Engine(crate::engine::EngineError::DataFusion {
            what: "run flag rows".into(),
            source: datafusion::error::DataFusionError::Context(
                "HashJoinExec".into(),
                Box::new(datafusion::error::DataFusionError::ResourcesExhausted(
                    "Failed to allocate 1048576 bytes".into(),
                )),
            ),
        });
        assert!(
            e.user_message().starts_with(
                "内存上限不足，请调高内存上限（--memory-limit 或配置中的 [engine] memory_limit）"
            ),
            "{}",
            e.user_message()
        );
        assert_eq!(e.exit_code(), 1);
    }

    /// A reconciliation whose changes file another run wrote says what to do (another
    /// output folder), a fault (exit 1); a temporary folder that is not there is the
    /// user's to fix (exit 2), one that is full a fault.
    #[test]
    fn changes_file_and_temporary_folder_say_what_to_do() {
        let e = Error::State(crate::state::StateError::ChangesFile {
            path: "state/hedui.db".into(),
            run: 3,
            file: "out/changes.jsonl".into(),
            why: "a line is not the change of household H1".into(),
        });
        assert!(
            e.user_message().starts_with("对账变更文件与本次对账不符"),
            "{}",
            e.user_message()
        );
        assert!(e.user_message().contains("请换一个输出文件夹重新对账"));
        assert_eq!(e.exit_code(), 1);
        let gone = Error::TempFolder {
            path: "/no/tmp".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert!(gone.user_message().starts_with("临时文件夹不可用"));
        assert_eq!(gone.exit_code(), 2);
        let full = Error::TempFolder {
            path: "/tmp/hedui-run-x".into(),
            source: std::io::Error::from(std::io::ErrorKind::StorageFull),
        };
        assert_eq!(full.exit_code(), 1);
    }

    /// A department that failed (HTTPS or object store) is exit 1; credentials or
    /// certificates that cannot be used are bad configuration, exit 2.
    #[test]
    fn department_failures_are_not_bad_input() {
        let http = Error::Source(ConnectorError::Http {
            url: "https://hr".into(),
            table: "hr_income".into(),
            message: "HTTP 503".into(),
        });
        let store = Error::Source(ConnectorError::Store {
            url: "s3://incoming/hr/".into(),
            message: "connection refused".into(),
        });
        let setup = Error::Source(ConnectorError::HttpSetup {
            url: "https://hr".into(),
            message: "the bearer token variable X is not set".into(),
        });
        assert_eq!(
            (http.exit_code(), store.exit_code(), setup.exit_code()),
            (1, 1, 2)
        );
    }
}
