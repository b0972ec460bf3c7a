//! `hedui user add|list|disable|enable|passwd`: the staff accounts of the pages, in the
//! state database (SPEC §11). Passwords come from standard input only, never from the
//! command line (where `ps` and shell histories would show them); each change is
//! audited as `os:USER`.

use std::io::BufRead as _;

use crate::cli::{UserArgs, UserCommand};
use crate::error::Error;
use crate::state::audit::os_actor;
use crate::state::credentials::{account_name, account_regions, account_role, hash_password};
use crate::state::State;

/// Runs a `user` subcommand; the line (or table) to print.
pub fn execute(args: &UserArgs) -> Result<String, Error> {
    let actor = os_actor();
    match &args.command {
        UserCommand::Add(a) => {
            let name = account_name(&a.name).map_err(Error::Usage)?;
            let role = account_role(&a.role).map_err(Error::Usage)?;
            let regions = account_regions(&a.regions).map_err(Error::Usage)?;
            let hash = hash_password(&password()?).map_err(Error::Usage)?;
            let mut state = open(&a.config)?;
            state.add_account(&actor, &name, &role, &regions, &hash)?;
            Ok(format!(
                "已添加账户 {name}（{role}，地区 {}）（account added）",
                regions.join(",")
            ))
        }
        UserCommand::List(a) => {
            let state = open(&a.config)?;
            let mut out = String::from("name\trole\tregions\tstatus\tcreated_at");
            let now = chrono::Utc::now().timestamp();
            let mut after = String::new();
            loop {
                let page = state.accounts_page(&after, 500)?;
                let Some(last) = page.last() else { break };
                after = last.name.clone();
                for acc in &page {
                    let status = match acc.locked_until {
                        _ if acc.disabled => "已停用 disabled".to_owned(),
                        Some(t) if t > now => {
                            format!("已锁定 locked ({} min)", (t - now + 59) / 60)
                        }
                        _ => "正常 active".to_owned(),
                    };
                    out.push_str(&format!(
                        "\n{}\t{}\t{}\t{status}\t{}",
                        acc.name,
                        acc.role,
                        acc.regions.join(","),
                        acc.created_at
                    ));
                }
            }
            Ok(out)
        }
        UserCommand::Disable(a) | UserCommand::Enable(a) => {
            let disable = matches!(args.command, UserCommand::Disable(_));
            let mut state = open(&a.config)?;
            state.set_account_disabled(&actor, a.name.trim(), disable)?;
            Ok(if disable {
                format!(
                    "已停用账户 {}，其会话已结束（account disabled, its sessions ended）",
                    a.name.trim()
                )
            } else {
                format!("已启用账户 {}（account enabled）", a.name.trim())
            })
        }
        UserCommand::Passwd(a) => {
            let hash = hash_password(&password()?).map_err(Error::Usage)?;
            let mut state = open(&a.config)?;
            state.set_account_password(&actor, a.name.trim(), &hash)?;
            Ok(format!(
                "已更新账户 {} 的密码，锁定已解除，其会话已结束（password set, lock cleared, sessions ended）",
                a.name.trim()
            ))
        }
    }
}

/// The state database of deployment config `file`.
fn open(file: &std::path::Path) -> Result<State, Error> {
    let d = crate::config::Deployment::load(file)?;
    let audit = crate::state::AuditFiles::of(&d);
    Ok(State::open_with(&d.state_path, audit)?)
}

/// The password on standard input: its first line, without the line end.
fn password() -> Result<String, Error> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| {
        Error::Usage(format!(
            "无法从标准输入读取密码（cannot read the password from standard input）: {e}"
        ))
    })?;
    let line = line.strip_suffix('\n').unwrap_or(&line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.is_empty() {
        return Err(Error::Usage(
            "标准输入中没有密码：例如 printf '%s' \"$PASSWORD\" | hedui user add …（no password on standard input）".into(),
        ));
    }
    Ok(line.to_owned())
}
