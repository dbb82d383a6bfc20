//! The `yihao` binary run as an operator runs it.

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// A command for the `yihao` binary of this build.
pub fn yihao_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_yihao"))
}

/// Runs `cmd` to its end with `input`, if any, on its standard input (closed after it); its output.
pub fn output_with_input(mut cmd: Command, input: Option<&str>) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    if let Some(text) = input {
        stdin.write_all(text.as_bytes()).unwrap();
    }
    drop(stdin);
    child.wait_with_output().unwrap()
}
