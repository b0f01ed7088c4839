//! `strata-admin`: manages tenants' API tokens in a tenants file, and makes
//! admin tokens.
//!
//! ```text
//! strata-admin tokens create --tenants-file F --tenant T   # prints the token, once
//! strata-admin tokens revoke --tenants-file F --tenant T --id ID
//! strata-admin tokens list   --tenants-file F
//! strata-admin hash-admin-token [--token-stdin]
//! ```
//!
//! It edits the file as the admin API does (under its lock, replaced
//! atomically); running services pick the change up at their next reload.

use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::secret::{self, SaltedHash};
use crate::tenants::{self, UpdateError};

#[derive(Debug, Parser)]
#[command(
    name = "strata-admin",
    about = "Manage Strata's API tokens (docs/auth.md)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Tenants' API tokens in a tenants file.
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// Make an admin token and the `auth.admin_token_hash` for it.
    HashAdminToken {
        /// Hash the token read from the first line of standard input
        /// instead of making a new one.
        #[arg(long)]
        token_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
enum TokensCommand {
    /// Create a token for a tenant (created when new); the token is printed
    /// on standard output, this once.
    Create {
        #[arg(long)]
        tenants_file: PathBuf,
        #[arg(long)]
        tenant: String,
    },
    /// Revoke a tenant's token by its id.
    Revoke {
        #[arg(long)]
        tenants_file: PathBuf,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        id: String,
    },
    /// List tenants and their tokens' ids and creation times.
    List {
        #[arg(long)]
        tenants_file: PathBuf,
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
}

/// Runs the command line `args` (the program name first); normal output to
/// `out`, messages to `err`.
pub fn run<I, T>(
    args: I,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let text = e.render().to_string();
            return if e.use_stderr() {
                let _ = write!(err, "{text}");
                ExitCode::from(2)
            } else {
                let _ = write!(out, "{text}");
                ExitCode::SUCCESS
            };
        }
    };
    match execute(cli.command, input, out, err) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            let _ = writeln!(err, "strata-admin: {message}");
            ExitCode::FAILURE
        }
    }
}

fn execute(
    command: Command,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    match command {
        Command::Tokens { command } => match command {
            TokensCommand::Create {
                tenants_file,
                tenant,
            } => {
                let (new, _) = tenants::update(&tenants_file, |f| f.create_token(&tenant))
                    .map_err(update_message)?;
                writeln!(out, "{}", new.token).map_err(io)?;
                writeln!(
                    err,
                    "created token {} for tenant {}; it is shown only this once. Use it as the basic auth password with user {} (or as a bearer token).",
                    new.id, new.tenant, new.tenant
                )
                .map_err(io)?;
            }
            TokensCommand::Revoke {
                tenants_file,
                tenant,
                id,
            } => {
                tenants::update(&tenants_file, |f| f.revoke_token(&tenant, &id))
                    .map_err(update_message)?;
                writeln!(
                    err,
                    "revoked token {id} of tenant {tenant}; services refuse it after their next reload"
                )
                .map_err(io)?;
            }
            TokensCommand::List {
                tenants_file,
                tenant,
            } => {
                let file = tenants::load(&tenants_file).map_err(|e| e.to_string())?;
                writeln!(out, "{:<32} {:<16} CREATED", "TENANT", "ID").map_err(io)?;
                for (name, tokens) in &file.tenants {
                    if tenant.as_ref().is_some_and(|t| t != name) {
                        continue;
                    }
                    for t in tokens {
                        writeln!(out, "{name:<32} {:<16} {}", t.id, t.created).map_err(io)?;
                    }
                }
            }
        },
        Command::HashAdminToken { token_stdin } => {
            let token = if token_stdin {
                let mut line = String::new();
                input.read_line(&mut line).map_err(io)?;
                let token = line.trim().to_string();
                if token.len() < 16 {
                    return Err(
                        "the admin token on standard input is shorter than 16 characters".into(),
                    );
                }
                token
            } else {
                secret::new_admin_token()
            };
            let hash = SaltedHash::new(&token);
            if !token_stdin {
                writeln!(out, "token: {token}").map_err(io)?;
            }
            writeln!(out, "admin_token_hash: {hash}").map_err(io)?;
            writeln!(
                err,
                "put admin_token_hash under auth: in the configuration; send the token as Authorization: Bearer <token> to /admin/ paths. The token is shown only this once."
            )
            .map_err(io)?;
        }
    }
    Ok(())
}

fn update_message(e: UpdateError) -> String {
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str], stdin: &str) -> (ExitCode, String, String) {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut input = stdin.as_bytes();
        let code = run(
            std::iter::once("strata-admin").chain(args.iter().copied()),
            &mut input,
            &mut out,
            &mut err,
        );
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn create_list_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tenants.yaml");
        let file = file.to_str().unwrap();
        let (code, out, err) = cli(
            &[
                "tokens",
                "create",
                "--tenants-file",
                file,
                "--tenant",
                "alpha",
            ],
            "",
        );
        assert_eq!(code, ExitCode::SUCCESS, "{err}");
        let token = out.trim();
        let id = secret::token_id(token).expect("a tenant token").to_string();
        assert!(err.contains(&id), "{err}");
        let (code, _, _) = cli(
            &[
                "tokens",
                "create",
                "--tenants-file",
                file,
                "--tenant",
                "beta",
            ],
            "",
        );
        assert_eq!(code, ExitCode::SUCCESS);

        let (_, tenants) = tenants::parse_bytes(dir.path(), &std::fs::read(file).unwrap()).unwrap();
        assert!(tenants.token(&id).unwrap().hash.verify(token));
        assert!(!std::fs::read_to_string(file).unwrap().contains(token));

        let (code, out, _) = cli(&["tokens", "list", "--tenants-file", file], "");
        assert_eq!(code, ExitCode::SUCCESS);
        assert!(
            out.contains("alpha") && out.contains("beta") && out.contains(&id),
            "{out}"
        );
        assert!(!out.contains(token));
        let (_, out, _) = cli(
            &["tokens", "list", "--tenants-file", file, "--tenant", "beta"],
            "",
        );
        assert!(!out.contains("alpha"), "{out}");

        let (code, _, err) = cli(
            &[
                "tokens",
                "revoke",
                "--tenants-file",
                file,
                "--tenant",
                "alpha",
                "--id",
                &id,
            ],
            "",
        );
        assert_eq!(code, ExitCode::SUCCESS, "{err}");
        assert!(!tenants::load(std::path::Path::new(file))
            .unwrap()
            .tenants
            .contains_key("alpha"));
        let (code, _, err) = cli(
            &[
                "tokens",
                "revoke",
                "--tenants-file",
                file,
                "--tenant",
                "alpha",
                "--id",
                &id,
            ],
            "",
        );
        assert_eq!(code, ExitCode::FAILURE);
        assert!(err.contains("has no token"), "{err}");
    }

    #[test]
    fn bad_input_is_explained() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.yaml");
        let file = file.to_str().unwrap();
        let (code, _, err) = cli(
            &[
                "tokens",
                "create",
                "--tenants-file",
                file,
                "--tenant",
                "a|b",
            ],
            "",
        );
        assert_eq!(code, ExitCode::FAILURE);
        assert!(err.contains("invalid tenant ID"), "{err}");
        let (code, _, err) = cli(&["tokens", "create", "--tenant", "a"], "");
        assert_eq!(code, ExitCode::from(2));
        assert!(err.contains("--tenants-file"), "{err}");
        std::fs::write(file, "tenants: [").unwrap();
        let (code, _, err) = cli(&["tokens", "list", "--tenants-file", file], "");
        assert_eq!(code, ExitCode::FAILURE);
        assert!(err.contains("invalid"), "{err}");
        let (code, out, _) = cli(&["--help"], "");
        assert_eq!(code, ExitCode::SUCCESS);
        assert!(out.contains("hash-admin-token"), "{out}");
    }

    #[test]
    fn admin_tokens_are_made_and_hashed() {
        let (code, out, _) = cli(&["hash-admin-token"], "");
        assert_eq!(code, ExitCode::SUCCESS);
        let token = out.lines().find_map(|l| l.strip_prefix("token: ")).unwrap();
        let hash = out
            .lines()
            .find_map(|l| l.strip_prefix("admin_token_hash: "))
            .unwrap();
        assert!(token.starts_with("strata-admin-"));
        assert!(SaltedHash::parse(hash).unwrap().verify(token));

        let (code, out, _) = cli(
            &["hash-admin-token", "--token-stdin"],
            "my-own-admin-token-0123\n",
        );
        assert_eq!(code, ExitCode::SUCCESS);
        assert!(!out.contains("token: "));
        let hash = out.trim().strip_prefix("admin_token_hash: ").unwrap();
        assert!(SaltedHash::parse(hash)
            .unwrap()
            .verify("my-own-admin-token-0123"));
        let (code, _, _) = cli(&["hash-admin-token", "--token-stdin"], "short\n");
        assert_eq!(code, ExitCode::FAILURE);
    }
}
