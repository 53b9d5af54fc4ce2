//! Reads a `RUN` command and decides whether liftoff can carry it out itself ([`classify`]).
//! The shell text is parsed exactly ([`liftoff_core::shell`]); each command must be one of the
//! forms of the module doc of [`super`], with options liftoff understands; anything else is the
//! reason the `RUN` is executed instead (never guessed at, never skipped).

use std::collections::BTreeMap;

use liftoff_core::quote::token;
use liftoff_core::shell::{self, Command, Field, Pipeline, RedirectOp, Script};

use super::{Form, NativeRun};

/// What a `RUN` is read with.
pub struct ClassifyInput<'a> {
    /// The command as it will run: the shell and its options then the text (shell form), or
    /// the exec form's arguments.
    pub argv: &'a [String],
    /// Whether the instruction is in shell form.
    pub shell_form: bool,
    /// The step's environment (`NAME=VALUE`).
    pub env: &'a [String],
    /// Absolute.
    pub workdir: &'a str,
    /// `--mount=type=secret` or `--network=none` given: executed, as written.
    pub special_mounts: bool,
    /// The text of a file at an absolute image path, when this build placed it from the
    /// context (`None` otherwise).
    pub read: &'a dyn Fn(&str) -> Option<String>,
}

/// The recognised forms of the command, or why it must be executed.
pub fn classify(input: &ClassifyInput) -> Result<NativeRun, String> {
    if !input.shell_form {
        return Err("the exec (JSON) form runs a program, not one of the recognised forms".into());
    }
    if input.special_mounts {
        return Err("RUN --mount or --network options need the command to run".into());
    }
    let (text, nounset) = shell_text(input.argv)?;
    let script = shell::parse(text).map_err(|e| e.to_string())?;
    let mut ctx = Ctx {
        input,
        nounset,
        bash: input.argv.first().is_some_and(|p| p.ends_with("bash")),
        cwd: input.workdir.to_string(),
        vars: BTreeMap::new(),
        forms: Vec::new(),
        venvs: Vec::new(),
        active: None,
    };
    for item in &script.items {
        ctx.pipeline(&item.pipeline)?;
    }
    let installs: Vec<bool> = ctx
        .forms
        .iter()
        .filter_map(|f| match f {
            Form::AptInstall { recommends, .. } => Some(*recommends),
            _ => None,
        })
        .collect();
    if installs.windows(2).any(|w| w[0] != w[1]) {
        return Err(
            "two apt-get installs, one with and one without --no-install-recommends".into(),
        );
    }
    Ok(NativeRun { forms: ctx.forms })
}

/// The command text of `sh -c TEXT` or `bash [-eux] [-o pipefail] -c TEXT`, and whether unset
/// variables are errors (`-u`).
fn shell_text(argv: &[String]) -> Result<(&str, bool), String> {
    let not_shell = || {
        format!(
            "the SHELL {} is not sh or bash with -c",
            token(&argv[..argv.len().saturating_sub(1)].join(" "))
        )
    };
    let (Some(program), Some(text)) = (argv.first(), argv.last()) else {
        return Err(not_shell());
    };
    if !matches!(
        program.as_str(),
        "/bin/sh" | "sh" | "/bin/bash" | "bash" | "/usr/bin/bash" | "/bin/dash"
    ) || argv.len() < 3
        || argv[argv.len() - 2] != "-c"
    {
        return Err(not_shell());
    }
    let mut nounset = false;
    let mut opts = argv[1..argv.len() - 2].iter();
    while let Some(o) = opts.next() {
        match o.as_str() {
            "-o" => match opts.next().map(String::as_str) {
                Some("pipefail" | "errexit" | "xtrace") => {}
                Some("nounset") => nounset = true,
                _ => return Err(not_shell()),
            },
            flags
                if flags.len() > 1
                    && flags.starts_with('-')
                    && flags[1..].chars().all(|c| matches!(c, 'e' | 'u' | 'x')) =>
            {
                nounset |= flags.contains('u');
            }
            _ => return Err(not_shell()),
        }
    }
    Ok((text, nounset))
}

struct Ctx<'a> {
    input: &'a ClassifyInput<'a>,
    nounset: bool,
    /// The shell is bash (`source` is a command).
    bash: bool,
    /// The working directory (`cd` changes it).
    cwd: String,
    /// Variables the command set (`NAME=value` alone).
    vars: BTreeMap<String, String>,
    forms: Vec<Form>,
    /// The virtual environments this command made.
    venvs: Vec<String>,
    /// The one `source DIR/bin/activate` made active.
    active: Option<String>,
}

/// A recognised command's name and arguments.
type Words = Vec<Field>;

impl Ctx<'_> {
    fn var(&self, name: &str) -> Option<String> {
        if let Some(v) = self.vars.get(name) {
            return Some(v.clone());
        }
        let from_env = self.input.env.iter().rev().find_map(|kv| {
            kv.split_once('=')
                .filter(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        });
        match from_env {
            Some(v) => Some(v),
            // An unset IFS is the default one, not an empty one.
            None if self.nounset || name == "IFS" => None,
            None => Some(String::new()),
        }
    }

    /// An absolute, clean path for a command's operand.
    fn path(&self, operand: &str) -> String {
        if operand.starts_with('/') {
            crate::project::clean_path(operand)
        } else {
            crate::project::clean_path(&format!("{}/{operand}", self.cwd))
        }
    }

    /// The text of a file the command reads (`$(cat FILE)`, `xargs < FILE`).
    fn read(&self, operand: &str) -> Result<String, String> {
        let path = self.path(operand);
        (self.input.read)(&path).ok_or_else(|| {
            format!(
                "it reads {}, which no COPY of this build placed",
                token(&path)
            )
        })
    }

    fn expand(&self, words: &[shell::Word]) -> Result<Words, String> {
        let mut subst = |script: &Script| self.cat_of(script);
        shell::expand_all(words, &|n| self.var(n), &mut subst).map_err(|e| e.to_string())
    }

    /// A redirection's file, when sh and bash agree on it.
    fn redirect_target(&self, word: &shell::Word) -> Result<String, String> {
        let mut subst = |script: &Script| self.cat_of(script);
        shell::expand_redirect(word, &|n| self.var(n), &mut subst).map_err(|e| e.to_string())
    }

    /// `$(cat FILE)`: the file's text; any other command substitution is refused.
    fn cat_of(&self, script: &Script) -> Option<String> {
        let [item] = script.items.as_slice() else {
            return None;
        };
        let [cmd] = item.pipeline.commands.as_slice() else {
            return None;
        };
        if !cmd.assignments.is_empty() || !cmd.redirects.is_empty() {
            return None;
        }
        let mut none = |_: &Script| None;
        let fields = shell::expand_all(&cmd.words, &|n| self.var(n), &mut none).ok()?;
        match fields.as_slice() {
            [cat, file] if cat.text == "cat" && !file.glob => self.read(&file.text).ok(),
            _ => None,
        }
    }

    fn pipeline(&mut self, p: &Pipeline) -> Result<(), String> {
        match p.commands.as_slice() {
            [] => Ok(()),
            [cmd] => self.command(cmd),
            [first, rest @ .., last] => {
                let input = self.pipe_source(first)?;
                let input = rest
                    .iter()
                    .try_fold(input, |text, filter| self.pipe_filter(filter, text))?;
                self.xargs(last, Some(input))
            }
        }
    }

    /// `cat FILE` at the head of a pipeline.
    fn pipe_source(&self, cmd: &Command) -> Result<String, String> {
        let words = self.plain(cmd)?;
        match words.as_slice() {
            [cat, file] if cat.text == "cat" && !file.glob => self.read(&file.text),
            _ => Err(format!(
                "a pipeline that starts with {} (liftoff reads `cat FILE | xargs apt-get install`)",
                token(&describe(&words))
            )),
        }
    }

    /// The filters the Runtime's own package trigger uses: `tr '\r\n' '\n'`, `sed -e 's/#.*//'`.
    fn pipe_filter(&self, cmd: &Command, text: String) -> Result<String, String> {
        let words = self.plain(cmd)?;
        let args: Vec<&str> = words.iter().map(|f| f.text.as_str()).collect();
        match args.as_slice() {
            ["tr", r"\r\n", r"\n"] => Ok(text.replace('\r', "\n")),
            ["sed", "-e", "s/#.*//"] | ["sed", "s/#.*//"] => Ok(text
                .split('\n')
                .map(|l| l.split_once('#').map_or(l, |(a, _)| a))
                .collect::<Vec<_>>()
                .join("\n")),
            _ => Err(format!(
                "{} in a pipeline is not a filter liftoff reads",
                token(&describe(&words))
            )),
        }
    }

    /// A command's words with no assignment or redirection allowed.
    fn plain(&self, cmd: &Command) -> Result<Words, String> {
        if !cmd.assignments.is_empty() || !cmd.redirects.is_empty() {
            return Err("a pipeline command with assignments or redirections".into());
        }
        self.expand(&cmd.words)
    }

    fn command(&mut self, cmd: &Command) -> Result<(), String> {
        if cmd.words.is_empty() {
            // `NAME=value` alone sets a shell variable for what follows.
            for (name, value) in &cmd.assignments {
                let mut subst = |script: &Script| self.cat_of(script);
                let text = shell::expand_assignment(value, &|n| self.var(n), &mut subst)
                    .map_err(|e| e.to_string())?;
                self.vars.insert(name.clone(), text);
            }
            return Ok(());
        }
        let words = self.expand(&cmd.words)?;
        let Some(name) = words.first().map(|f| f.text.clone()) else {
            return Ok(());
        };
        let apt = matches!(name.as_str(), "apt-get" | "apt");
        for (var, _) in &cmd.assignments {
            if !(apt
                && matches!(
                    var.as_str(),
                    "DEBIAN_FRONTEND" | "DEBCONF_NONINTERACTIVE_SEEN" | "DEBIAN_PRIORITY"
                ))
            {
                return Err(format!(
                    "{} in front of {} is not recognised",
                    token(var),
                    token(&name)
                ));
            }
        }
        if name == "xargs" {
            return self.xargs(cmd, None);
        }
        let out = match cmd.redirects.as_slice() {
            [] => None,
            [r] if name == "echo" && matches!(r.op, RedirectOp::Out | RedirectOp::Append) => {
                let target = self.redirect_target(&r.target)?;
                Some((self.path(&target), r.op == RedirectOp::Append))
            }
            _ => return Err(format!("a redirection of {}", token(&name))),
        };
        if name != "rm" && words.iter().any(|f| f.glob) {
            return Err(format!(
                "{} with an unquoted wildcard",
                token(&describe(&words))
            ));
        }
        let args: Vec<String> = words[1..].iter().map(|f| f.text.clone()).collect();
        match name.as_str() {
            "apt-get" | "apt" => {
                let form = super::classify_apt::apt(&args)?;
                self.forms.push(form);
            }
            "echo" => self.echo(&args, out)?,
            "cd" => match args.as_slice() {
                [dir] => self.cwd = self.path(dir),
                _ => return Err("`cd` without exactly one folder".into()),
            },
            "export" => match args.as_slice() {
                [kv] if kv == "DEBIAN_FRONTEND=noninteractive" => {}
                _ => return Err(format!("{} is not recognised", token(&describe(&words)))),
            },
            "uv" if words.get(1).is_some_and(|f| f.text == "pip") => {
                let all = words_text(&words);
                let virtual_env = self.var("VIRTUAL_ENV").is_some_and(|v| !v.is_empty());
                let form = super::classify_pip::uv_pip(
                    &all[2..],
                    &|f| self.read(f),
                    &|p| self.path(p),
                    self.active.clone(),
                    virtual_env,
                )?;
                self.forms.push(form);
            }
            _ if super::classify_pip::pip_args(&words_text(&words)).is_some() => {
                let all = words_text(&words);
                let pip_args = super::classify_pip::pip_args(&all).unwrap_or_default();
                let (program, venv) = self.program(&name)?;
                let form = super::classify_pip::pip(
                    pip_args,
                    &|f| self.read(f),
                    &|p| self.path(p),
                    program,
                    venv,
                )?;
                self.forms.push(form);
            }
            "mkdir" | "chown" | "chmod" | "ln" | "rm" => {
                let form = super::classify_edits::edit(&name, &words[1..], &|p| self.path(p))?;
                self.forms.push(form);
            }
            "source" | "." => self.activate(&name, &args)?,
            "deactivate" => {
                if !args.is_empty() || self.active.take().is_none() {
                    return Err(
                        "`deactivate` with no virtual environment this RUN activated".into(),
                    );
                }
            }
            _ if super::classify_pip::is_python(&name)
                && words.get(1).is_some_and(|f| f.text == "-m")
                && words.get(2).is_some_and(|f| f.text == "venv") =>
            {
                self.venv(&name, &args[2..])?;
            }
            other => {
                return Err(format!(
                    "`{}` is not one of the recognised commands",
                    token(other)
                ));
            }
        }
        Ok(())
    }

    /// A program as the form records it (a path made absolute, a bare name as written) and the
    /// virtual environment of this `RUN` it runs from: the one its path is in, else the active
    /// one for a bare name (activation puts its `bin` first on `PATH`).
    fn program(&self, name: &str) -> Result<(String, Option<String>), String> {
        if !name.contains('/') {
            return Ok((name.to_string(), self.active.clone()));
        }
        let path = self.path(name);
        let venv = self
            .venvs
            .iter()
            .find(|v| {
                path.strip_prefix(v.as_str())
                    .and_then(|r| r.strip_prefix("/bin/"))
                    .is_some_and(|r| !r.contains('/'))
            })
            .cloned();
        Ok((path, venv))
    }

    /// `python -m venv ARGS…`.
    fn venv(&mut self, python: &str, args: &[String]) -> Result<(), String> {
        let (program, from_venv) = self.program(python)?;
        if from_venv.is_some() {
            return Err("python -m venv run with a virtual environment's Python".into());
        }
        let (_, dir) = liftoff_python::venv::parse_options(args).map_err(|e| e.to_string())?;
        let dir = self.path(&dir);
        if self.venvs.contains(&dir) {
            return Err(format!("a second python -m venv of {}", token(&dir)));
        }
        self.venvs.push(dir.clone());
        self.forms.push(Form::Venv {
            dir,
            python: program,
            args: args.to_vec(),
        });
        Ok(())
    }

    /// `source DIR/bin/activate` (bash) or `. DIR/bin/activate`, of a venv this `RUN` made.
    fn activate(&mut self, name: &str, args: &[String]) -> Result<(), String> {
        if name == "source" && !self.bash {
            // sh has no `source`: the command fails, as it does with Docker.
            return Err("`source` is not an sh command (SHELL is sh)".into());
        }
        let [script] = args else {
            return Err(format!("`{name}` without exactly one file"));
        };
        let path = self.path(script);
        match path
            .strip_suffix("/bin/activate")
            .filter(|v| self.venvs.iter().any(|d| d == v))
        {
            Some(v) => {
                self.active = Some(v.to_string());
                Ok(())
            }
            None => Err(format!(
                "it reads {}, which is not the activate script of a virtual environment this RUN made",
                token(&path)
            )),
        }
    }

    /// `echo [-n] TEXT…`, to a file or (no effect on the image) to the output.
    fn echo(&mut self, args: &[String], out: Option<(String, bool)>) -> Result<(), String> {
        let (newline, words) = match args.first().map(String::as_str) {
            Some("-n") => (false, &args[1..]),
            _ => (true, args),
        };
        if words
            .iter()
            .any(|w| w.contains('\\') || w.starts_with("-e") || w == "-E")
        {
            // sh's echo and bash's disagree on backslashes and options.
            return Err("echo with backslashes or -e/-E (sh and bash disagree on them)".into());
        }
        let Some((path, append)) = out else {
            return Ok(());
        };
        let mut text = words.join(" ");
        if newline {
            text.push('\n');
        }
        self.forms.push(Form::Write { path, text, append });
        Ok(())
    }

    /// `xargs [-r] [-a FILE] apt-get …` fed by `input` (a pipeline) or `< FILE`.
    fn xargs(&mut self, cmd: &Command, input: Option<String>) -> Result<(), String> {
        if !cmd.assignments.is_empty() {
            return Err("assignments in front of xargs".into());
        }
        let words = self.expand(&cmd.words)?;
        if words.first().is_none_or(|f| f.text != "xargs") {
            return Err(format!(
                "a pipeline that ends with {} (liftoff reads `… | xargs apt-get install`)",
                token(&describe(&words))
            ));
        }
        let mut input = input;
        for r in &cmd.redirects {
            match (r.op, &input) {
                (RedirectOp::In, None) => {
                    let target = self.redirect_target(&r.target)?;
                    input = Some(self.read(&target)?);
                }
                _ => return Err("a redirection of xargs".into()),
            }
        }
        let mut rest = words[1..].iter().map(|f| f.text.clone()).peekable();
        while let Some(opt) = rest.peek().filter(|o| o.starts_with('-')).cloned() {
            rest.next();
            match opt.as_str() {
                "-r" | "--no-run-if-empty" => {}
                "-a" if input.is_none() => {
                    let file = rest.next().ok_or("xargs -a without a file")?;
                    input = Some(self.read(&file)?);
                }
                _ => return Err(format!("xargs option {} is not recognised", token(&opt))),
            }
        }
        let input =
            input.ok_or("xargs reads its standard input, which the command does not give")?;
        if input.contains(['\'', '"', '\\']) {
            return Err("the list fed to xargs has quotes or backslashes".into());
        }
        let mut args: Vec<String> = rest.collect();
        if args.first().is_none_or(|a| a != "apt-get" && a != "apt") {
            return Err("xargs runs something other than apt-get".into());
        }
        args.remove(0);
        args.extend(input.split_whitespace().map(str::to_string));
        let form = super::classify_apt::apt(&args)?;
        self.forms.push(form);
        Ok(())
    }
}

fn words_text(words: &[Field]) -> Vec<String> {
    words.iter().map(|f| f.text.clone()).collect()
}

/// A command's words as written, for messages.
fn describe(words: &[Field]) -> String {
    words
        .iter()
        .map(|f| f.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
#[path = "classify_tests.rs"]
mod tests;
